"""Tiny hand-made Message tables for step tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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
