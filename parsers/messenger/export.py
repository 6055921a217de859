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
- a message without a sender or a time is quarantined with its reason; an unsent one is `deleted`.

End-to-end-encrypted chats (most one-to-one chats since 2024) come out of a separate download
(messenger.com's "secure storage"), one file per chat, in another shape: `{"participants": ["A",
"B"], "threadName", "messages": [{"senderName", "timestamp", "text", "type", "isUnsent", "media":
[{"uri"}], "reactions"}]}`. It is read as the classic shape (`rows.classic_shape`): the same rows,
media typed by file suffix, mojibake repaired where there is any.

Nothing here imports Prefect. A part is read whole (the apps cap a part at 10,000 messages): typed
and column-wise (`columns.py`) where it has the usual shape, else with `json.loads` message by
message (`plain_rows`), which defines the results.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from parsers.base import ParseBatch, ParseContext
from parsers.errors import InputError
from parsers.messenger import columns
from parsers.messenger.rows import (
    SOURCE,
    Rows,
    batch,
    classic_shape,
    conversation_id,
    is_e2ee,
    kind_and_text,
    rejection,
    repair,
)
from parsers.typed_json import ShapeError

__all__ = ["SOURCE", "conversation_id", "parse_part", "plain_rows", "read_plain", "repair", "sniff"]


def sniff(sample: str) -> bool:
    """Whether the head of a text looks like a Messenger or Instagram `message_*.json` part."""
    head = sample.lstrip()[:65536]
    return (
        head.startswith("{")
        and '"participants"' in head
        and ('"sender_name"' in head or '"messages"' in head)
    )


def parse_part(path: Path, ctx: ParseContext, display_name: str | None = None) -> Iterator[ParseBatch]:
    """One part of a thread: its messages oldest first (each with the thread's conversation)."""
    try:
        rows, conversation = columns.read(path, ctx.owner_id)  # the usual shape, column-wise
    except ShapeError:
        rows, conversation = read_plain(path.read_bytes(), ctx.owner_id, display_name or str(path))
    yield batch(rows, ctx, conversation)


def read_plain(data: bytes, owner_id: str, name: str) -> tuple[Rows, str]:
    """A part's rows and conversation through `json.loads`; `InputError` where it is not a thread."""
    try:
        thread = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(name, f"not valid Messenger/Instagram JSON ({exc})") from None
    if not isinstance(thread, dict) or not isinstance(thread.get("messages"), list):
        raise InputError(name, "has no `messages` list: not a Messenger/Instagram thread")
    if is_e2ee(thread):
        thread = classic_shape(thread)
    return plain_rows(thread["messages"]), conversation_id(owner_id, thread)


def plain_rows(messages: list[Any]) -> Rows:
    """The rows of a part's messages (newest first), message by message: what the typed reader must equal."""
    ts: list[int] = []
    speaker: list[str] = []
    text: list[str] = []
    kind: list[str] = []
    record: list[int] = []
    rejected: tuple[list[int], list[str], list[str]] = ([], [], [])
    # Rows go out oldest first, numbered from the oldest.
    for number, message in enumerate(reversed(messages), start=1):
        reason, stamp = rejection(message) if isinstance(message, dict) else ("not a message object", 0)
        if reason:
            rejected[0].append(number)
            rejected[1].append(reason)
            rejected[2].append(repair(json.dumps(message, ensure_ascii=False))[:2000])
            continue
        message_kind, message_text = kind_and_text(message)
        ts.append(stamp)
        speaker.append(repair(str(message["sender_name"])))
        text.append(message_text)
        kind.append(message_kind)
        record.append(number)
    return Rows(ts, speaker, text, kind, record, rejected)
