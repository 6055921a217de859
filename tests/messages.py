"""Tiny hand-made Message tables for step tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows with defaults: each needs at least text; ts given as minutes after T0."""
    out = []
    for i, row in enumerate(rows):
        minute = row.get("minute", i)
        out.append(
            {
                "message_id": row.get("message_id", f"{row.get('file', 'f1')}-{i:010d}"),
                "owner_id": "o",
                "conversation_id": row.get("conversation_id", "c1"),
                "source": "kakao_android_txt",
                "ts": pd.Timestamp(T0 + timedelta(minutes=minute)) if "ts" not in row else row["ts"],
                "speaker": row.get("speaker", "엄마"),
                "text": row["text"],
                "kind": row.get("kind", "text"),
                "line_no": i + 1,
                "attachment": None,
            }
        )
    return pd.DataFrame(out)


def small_family_export(path: Path, rounds: int = 60, lines: tuple[tuple[str, str], ...] = ()) -> Path:
    """A KakaoTalk Android export of `rounds` rounds, each the (speaker, text) `lines` a minute apart.

    Sessions break every fifth round (four hours): enough held-out sessions for a dataset.
    Default: 나 asks, 엄마 answers.
    """
    from parsers.kakao.render import Line, RenderOptions, render_export

    lines = lines or (("나", "오늘 뭐 했어"), ("엄마", "엄마는 시장 다녀왔지"))
    out, ts = [], datetime(2024, 3, 1, 9, 0)
    for i in range(rounds):
        ts += timedelta(minutes=2 * len(lines) if i % 5 else 240)
        out += [Line(ts + timedelta(minutes=k), who, f"{text} {i}") for k, (who, text) in enumerate(lines)]
    path.write_text(render_export("android_ko", out, RenderOptions(room="가족")), encoding="utf-8")
    return path
