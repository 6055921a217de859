"""Telegram Desktop JSON exports (`result.json`) as canonical Messages.

Two shapes (Telegram Desktop's export, and what public parsers' code shows of it):
- one chat: `{"name", "type": "personal_chat" | "private_group" | ..., "id", "messages": [...]}`;
- the whole account: `{"personal_information", "chats": {"list": [chat, chat, ...]}, "left_chats":
  {"list": [...]}, ...}` (`left_chats`: the chats the owner left; Telegram Desktop writes and reads
  both lists), one conversation per chat, the chats' then the left chats'.
A message is `{"id", "type": "message" | "service", "date", "date_unixtime", "from" | "actor",
"text", ...}`: `text` is a string or an array of strings and entities (`{"type": "link", "text":
...}`), concatenated as written; the instant comes from `date_unixtime` where present, else `date`
is read as local time; media are typed from `media_type`, `photo`, `file`, `location_information`,
`contact_information`; service messages (calls, joins, pins) are `system` (a call: `call`).
A message without a date or a sender is quarantined with its reason.

Nothing here imports Prefect. The file is read whole (a streaming reader is future work: an
export's size is mostly its media, which live beside it, not in it): typed and column-wise
(`columns.py`) where the document has the usual shape, else with `json.loads` message by message
(`plain_rows`), which defines the results.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from parsers.base import ParseBatch, ParseContext
from parsers.errors import InputError
from parsers.telegram import columns
from parsers.telegram.rows import (
    SOURCE,
    Rows,
    batches,
    conversation_id,
    deleted_account,
    flatten_text,
    instant,
    kind_of,
    placeholder,
    rejection,
)
from parsers.typed_json import ShapeError

__all__ = ["SOURCE", "chats", "conversation_id", "flatten_text", "parse_export", "plain_rows", "sniff"]
_BATCH = 20_000


def sniff(sample: str) -> bool:
    """Whether the head of a text looks like a Telegram Desktop JSON export."""
    head = sample.lstrip()[:65536]
    return head.startswith("{") and (
        '"personal_information"' in head
        or ('"messages"' in head and ('"date_unixtime"' in head or '"from_id"' in head))
    )


#: The lists of chats of a whole-account export, in the order they are read.
ACCOUNT_LISTS = ("chats", "left_chats")


def chats(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The chats of an export: its lists (whole account: `ACCOUNT_LISTS`) or itself (one chat)."""
    lists = [_listed(document.get(key)) for key in ACCOUNT_LISTS]
    if any(listed is not None for listed in lists):
        return [c for listed in lists for c in listed or [] if isinstance(c, dict)]
    return [document] if isinstance(document.get("messages"), list) else []


def _listed(section: Any) -> list[Any] | None:
    """A whole-account section's `list` of chats, if it has one."""
    listed = section.get("list") if isinstance(section, dict) else None
    return listed if isinstance(listed, list) else None


def parse_export(path: Path, ctx: ParseContext, display_name: str | None = None) -> Iterator[ParseBatch]:
    """Messages (each with its chat's conversation id) and quarantined records, in batches."""
    data = path.read_bytes()
    try:
        rows = columns.read(data, ctx.owner_id, ctx.timezone)  # the usual shape, column-wise
    except ShapeError:
        rows = plain_rows(_load(data, display_name or str(path)), ctx)
    del data
    yield from batches(rows, ctx, _BATCH)


def _load(data: bytes, name: str) -> Any:
    """The document as `json.loads` reads it; `InputError` where it is not JSON."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(name, f"not valid Telegram JSON ({exc}); export it again") from None


def plain_rows(document: Any, ctx: ParseContext) -> Rows:
    """The rows of a parsed document, message by message: what the typed reader must equal."""
    rows: dict[str, list[Any]] = {k: [] for k in ("ts", "speaker", "text", "kind", "record", "thread")}
    rejected: tuple[list[int], list[str], list[str]] = ([], [], [])
    record = 0
    for chat in chats(document if isinstance(document, dict) else {}):
        thread = conversation_id(ctx.owner_id, chat)
        for message in chat.get("messages") or []:
            record += 1
            if not isinstance(message, dict):
                rejected[0].append(record)
                rejected[1].append("not a message object")
                rejected[2].append(json.dumps(message, ensure_ascii=False)[:2000])
                continue
            seconds = instant(message, ctx.timezone)
            speaker = message.get("from") if message.get("type") != "service" else None
            if speaker is None and message.get("type") == "message":
                speaker = deleted_account(ctx.owner_id, message.get("from_id"))
            reason = rejection(seconds, speaker, message.get("type") == "message")
            if reason:
                rejected[0].append(record)
                rejected[1].append(reason)
                rejected[2].append(json.dumps(message, ensure_ascii=False)[:2000])
                continue
            speaker = speaker if isinstance(speaker, str) else None  # a null, or an empty list or object
            kind = kind_of(message)
            text = flatten_text(message.get("text")) or placeholder(message, kind)
            for key, value in (("ts", seconds), ("speaker", speaker), ("text", text), ("kind", kind),
                               ("record", record), ("thread", thread)):  # fmt: skip
                rows[key].append(value)
    return Rows(
        rows["ts"], rows["speaker"], rows["text"], rows["kind"], rows["record"], rows["thread"], rejected
    )
