"""What both Messenger readers (typed and plain) share: how a message reads, and the batch they yield.

The message functions here take a message as `json.loads` gives it (a dict, its text still
mojibake); they define the rows, and the typed reader calls them for every message it does not
take column-wise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from parsers.base import (
    ParseBatch,
    ParseContext,
    build_messages,
    build_quarantine,
    instants_ms,
    with_conversations,
)

SOURCE = "messenger_json"
_MEDIA = (("photos", "photo"), ("videos", "video"), ("gifs", "video"), ("audio_files", "voice"),
          ("sticker", "emoticon"), ("files", "file"))  # fmt: skip


@dataclass(frozen=True)
class Rows:
    """A part's accepted messages as columns (oldest first), and its rejected ones."""

    stamps: list[int]
    speakers: Sequence[str] | pa.Array
    texts: Sequence[str] | pa.Array
    kinds: Sequence[str] | pa.Array
    #: 1-based position of each message counted from the oldest.
    records: Sequence[int] | np.ndarray
    rejected: tuple[list[int], list[str], list[str]]


def repair(text: str) -> str:
    """Undo the exports' mojibake (UTF-8 bytes written as latin-1 characters); other text unchanged."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text  # real text (a character above U+00FF), or latin-1 that is not UTF-8 bytes


def conversation_id(owner_id: str, thread: dict[str, Any]) -> str:
    """The thread's conversation: its `thread_path`, else its title and participants, within the owner."""
    key = thread.get("thread_path") or "|".join(
        [
            repair(str(thread.get("title", ""))),
            *sorted(
                repair(str(p.get("name", "")))
                for p in thread.get("participants") or []
                if isinstance(p, dict)
            ),
        ]
    )
    return "messenger-" + hashlib.sha256(f"{owner_id}|{key}".encode()).hexdigest()[:16]


def kind_of(message: dict[str, Any]) -> str:
    """What a message holds: a call, its first media, a join or leave (`system`), else text."""
    if message.get("type") == "Call" or "call_duration" in message:
        return "call"
    for key, kind in _MEDIA:
        if message.get(key):
            return kind
    if message.get("type") in ("Subscribe", "Unsubscribe"):
        return "system"
    return "text"


def kind_and_text(message: dict[str, Any]) -> tuple[str, str]:
    """A message's kind and its text, repaired: its content, else a share's link, else a placeholder."""
    found = kind_of(message)
    content = repair(str(message.get("content") or ""))
    if found == "call" and not content:
        content = f"[call {message.get('call_duration', 0)} s]"
    text = content or (repair(str((message.get("share") or {}).get("link", ""))) or f"[{found}]")
    return ("text" if content and found not in ("call", "system") else found), text


def batch(rows: Rows, ctx: ParseContext, conversation: str) -> ParseBatch:
    """The part's one batch: its messages, all in the thread's conversation, and its rejections."""
    table = build_messages(
        ctx,
        SOURCE,
        instants_ms(rows.stamps),
        pa.array(rows.speakers, pa.string()),
        pa.array(rows.texts, pa.string()),
        pa.array(rows.kinds, pa.string()),
        np.asarray(rows.records, dtype=np.int64),
    )
    table = with_conversations(table, pa.repeat(pa.scalar(conversation, pa.string()), table.num_rows))
    return ParseBatch(table, build_quarantine(ctx, *rows.rejected))
