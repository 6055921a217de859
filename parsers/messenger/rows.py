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
    END_SECOND,
    FIRST_SECOND,
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
#: Keys only the end-to-end-encrypted chats' export has (messenger.com's "secure storage" download,
#: the only way out for most one-to-one chats since 2024): bytes a document holding them contains.
E2EE_MARKS = (b'"senderName"', b'"threadName"')
_E2EE_NAMES = {
    "senderName": "sender_name",
    "timestamp": "timestamp_ms",
    "text": "content",
    "isUnsent": "is_unsent",
}
#: Where an end-to-end-encrypted chat's `media` item goes in the classic shape, by its file's suffix.
_MEDIA_BY_SUFFIX = {
    **dict.fromkeys(("jpg", "jpeg", "png", "webp", "heic", "heif", "bmp"), "photos"),
    **dict.fromkeys(("mp4", "mov", "m4v", "webm", "3gp", "avi"), "videos"),
    "gif": "gifs",
    **dict.fromkeys(("m4a", "aac", "mp3", "ogg", "opus", "wav", "amr"), "audio_files"),
}


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
                repair(str(p.get("name", ""))) for p in _listed(thread, "participants") if isinstance(p, dict)
            ),
        ]
    )
    return "messenger-" + hashlib.sha256(f"{owner_id}|{key}".encode()).hexdigest()[:16]


def _listed(holder: dict[str, Any], key: str) -> list[Any]:
    """`holder[key]` where it is a list, else an empty one."""
    found = holder.get(key)
    return found if isinstance(found, list) else []


def is_e2ee(thread: dict[str, Any]) -> bool:
    """Whether a thread is an end-to-end-encrypted chat's export (`threadName`, `senderName`, ...)."""
    messages = thread.get("messages")
    return (
        "threadName" in thread
        or any(isinstance(p, str) for p in _listed(thread, "participants"))
        or (isinstance(messages, list) and any(isinstance(m, dict) and "senderName" in m for m in messages))
    )


def classic_shape(thread: dict[str, Any]) -> dict[str, Any]:
    """An end-to-end-encrypted chat's export in the classic export's shape, which the readers take.

    That export is `{"participants": ["A", "B"], "threadName", "messages": [{"senderName", "timestamp"
    (ms), "text", "type", "isUnsent", "media": [{"uri"}], "reactions"}]}`: names become `title` and
    `participants` objects, each message's fields their classic names, its media typed by file suffix,
    and the messages newest first, as the classic export lists them.
    """
    shaped = {k: v for k, v in thread.items() if k not in ("threadName", "participants", "messages")}
    if "threadName" in thread and "title" not in thread:
        shaped["title"] = thread["threadName"]
    participants = thread.get("participants")
    if isinstance(participants, list):
        shaped["participants"] = [{"name": p} if isinstance(p, str) else p for p in participants]
    messages = [_classic_message(m) for m in _listed(thread, "messages")]
    found = [m.get("timestamp_ms") for m in messages if isinstance(m, dict)]
    stamps = [s for s in found if isinstance(s, int) and not isinstance(s, bool)]
    shaped["messages"] = messages[::-1] if stamps and stamps[0] < stamps[-1] else messages
    return shaped


def _classic_message(message: Any) -> Any:
    """One end-to-end-encrypted chat's message under the classic export's field names."""
    if not isinstance(message, dict):
        return message
    shaped = {k: v for k, v in message.items() if k not in _E2EE_NAMES and k != "media"}
    for key, classic in _E2EE_NAMES.items():
        if key in message and classic not in message:
            shaped[classic] = message[key]
    for item in _listed(message, "media"):
        uri = item.get("uri") if isinstance(item, dict) else None
        suffix = uri.rsplit(".", 1)[-1].lower() if isinstance(uri, str) and "." in uri else ""
        shaped.setdefault(_MEDIA_BY_SUFFIX.get(suffix, "files"), []).append(item)
    return shaped


def kind_of(message: dict[str, Any]) -> str:
    """What a message holds: unsent (`deleted`), a call, its first media, a join or leave (`system`)."""
    if message.get("is_unsent") is True:
        return "deleted"
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
    content = message.get("content")
    content = repair(content) if isinstance(content, str) else ""
    if found == "call" and not content:
        content = f"[call {message.get('call_duration', 0)} s]"
    share = message.get("share")
    link = share.get("link") if isinstance(share, dict) else None
    text = content or (repair(link) if isinstance(link, str) else "") or f"[{found}]"
    return ("text" if content and found not in ("call", "system", "deleted") else found), text


def rejection(message: dict[str, Any]) -> tuple[str | None, int]:
    """Why a message is quarantined (None: it is not), and its time (ms) where it is not."""
    sender = message.get("sender_name")
    if not sender or "timestamp_ms" not in message:
        return ("no sender" if "timestamp_ms" in message else "no time"), 0
    try:
        stamp = int(message["timestamp_ms"])
    except (TypeError, ValueError, OverflowError):
        return "no time", 0
    if not FIRST_SECOND * 1000 <= stamp < END_SECOND * 1000:
        return "time out of range", 0
    if not isinstance(sender, str):
        return "sender not text", 0
    return None, stamp


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
