r"""Facebook Messenger and Instagram direct-message JSON exports (`message_*.json`) as Messages.

Both apps export a thread as `{"participants": [{"name"}], "messages": [...], "title",
"thread_path"}`, split into `message_1.json`, `message_2.json`, ... for long threads, messages
newest first. A message is `{"sender_name", "timestamp_ms", "content" | "photos" | "videos" |
"audio_files" | "gifs" | "sticker" | "files" | "share", "type", "reactions"}` (what the apps'
help pages and public parsers' code show of real exports). What this reader does about it:
- text is written as UTF-8 bytes each shown as a latin-1 character (`J\u00e2\u009d\u00a4` for
  `J❤`): repaired to the real text (names too) wherever it is such mojibake;
- every part of a thread gets the thread's conversation (from `thread_path`, else the title and
  participants), so `message_1.json` and `message_2.json` of one thread make one conversation;
- rows go out oldest first; media, calls and shares are typed; reactions are not messages;
- a message without a sender or a time is quarantined with its reason.

Nothing here imports Prefect. A part is read whole (`json.load`): the apps cap a part at 10,000
messages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
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
from parsers.errors import InputError

SOURCE = "messenger_json"
_MEDIA = (("photos", "photo"), ("videos", "video"), ("gifs", "video"), ("audio_files", "voice"),
          ("sticker", "emoticon"), ("files", "file"))  # fmt: skip


def sniff(sample: str) -> bool:
    """Whether the head of a text looks like a Messenger or Instagram `message_*.json` part."""
    head = sample.lstrip()[:65536]
    return (
        head.startswith("{")
        and '"participants"' in head
        and ('"sender_name"' in head or '"messages"' in head)
    )


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


def _kind(message: dict[str, Any]) -> str:
    if message.get("type") == "Call" or "call_duration" in message:
        return "call"
    for key, kind in _MEDIA:
        if message.get(key):
            return kind
    if message.get("type") in ("Subscribe", "Unsubscribe"):
        return "system"
    return "text"


def parse_part(path: Path, ctx: ParseContext, display_name: str | None = None) -> Iterator[ParseBatch]:
    """One part of a thread: its messages oldest first (each with the thread's conversation)."""
    try:
        with path.open("rb") as handle:
            thread = json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(display_name or str(path), f"not valid Messenger/Instagram JSON ({exc})") from None
    if not isinstance(thread, dict) or not isinstance(thread.get("messages"), list):
        raise InputError(
            display_name or str(path), "has no `messages` list: not a Messenger/Instagram thread"
        )
    conversation = conversation_id(ctx.owner_id, thread)
    messages = thread["messages"]
    ts: list[int] = []
    speaker: list[str] = []
    text: list[str] = []
    kind: list[str] = []
    record: list[int] = []
    rejected: tuple[list[int], list[str], list[str]] = ([], [], [])
    # Rows go out oldest first, numbered from the oldest.
    for number, message in enumerate(reversed(messages), start=1):
        if not isinstance(message, dict) or not message.get("sender_name") or "timestamp_ms" not in message:
            reason = "no sender" if isinstance(message, dict) and "timestamp_ms" in message else "no time"
            rejected[0].append(number)
            rejected[1].append(reason if isinstance(message, dict) else "not a message object")
            rejected[2].append(repair(json.dumps(message, ensure_ascii=False))[:2000])
            continue
        try:
            stamp = int(message["timestamp_ms"])
        except (TypeError, ValueError):
            rejected[0].append(number)
            rejected[1].append("no time")
            rejected[2].append(repair(json.dumps(message, ensure_ascii=False))[:2000])
            continue
        found = _kind(message)
        content = repair(str(message.get("content") or ""))
        if found == "call" and not content:
            content = f"[call {message.get('call_duration', 0)} s]"
        ts.append(stamp)
        speaker.append(repair(str(message["sender_name"])))
        text.append(content or (repair(str((message.get("share") or {}).get("link", ""))) or f"[{found}]"))
        kind.append("text" if content and found not in ("call", "system") else found)
        record.append(number)
    table = build_messages(
        ctx,
        SOURCE,
        instants_ms(ts),
        pa.array(speaker, pa.string()),
        pa.array(text, pa.string()),
        pa.array(kind, pa.string()),
        np.array(record, dtype=np.int64),
    )
    table = with_conversations(table, [conversation] * table.num_rows)
    yield ParseBatch(table, build_quarantine(ctx, *rejected))
