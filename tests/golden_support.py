"""Shared by the golden test and its regeneration script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from parsers.base import ParseContext
from parsers.exports import inspect_export, iter_batches

SAMPLES = (
    "pc_ko.txt",
    "pc_en.txt",
    "pc_ko_24h.txt",
    "mac_csv.csv",
    "android_ko.txt",
    "android_ko_cp949.txt",
    "android_en.txt",
    "android_en_gb.txt",
    "ios_ko.txt",
    "ios_ko_utf16.txt",
    "ios_en.txt",
    "ios_en_at.txt",
)
ZONE = "Asia/Seoul"


def parse_golden(path: Path, chunk_bytes: int = 8 * 1024 * 1024) -> dict[str, Any]:
    """Parse a sample into a JSON-ready dict (local ISO times, every Message field)."""
    info = inspect_export(path, display_name=path.name)
    ctx = ParseContext("golden", "upload", path.name, info.sha256, info.conversation_id, ZONE)
    messages: list[dict[str, Any]] = []
    quarantine: list[dict[str, Any]] = []
    for batch in iter_batches(info, ctx, chunk_bytes=chunk_bytes):
        table = batch.messages
        local = table.column("ts").cast(pa.timestamp("us", tz=ZONE)).to_pylist()
        for row, ts in zip(table.drop_columns(["ts"]).to_pylist(), local, strict=True):
            messages.append({"ts": ts.isoformat(), **row})
        quarantine.extend(
            {"line_no": r["line_no"], "reason": r["reason"], "raw": r["raw"]}
            for r in batch.quarantine.to_pylist()
        )
    return {
        "format": info.format_name,
        "source": info.source,
        "encoding": info.encoding.name,
        "room": info.detection.room,
        "messages": messages,
        "quarantine": quarantine,
    }
