"""Telegram Desktop JSON exports (`result.json`) as canonical Messages.

Two shapes (Telegram Desktop's export, and what public parsers' code shows of it):
- one chat: `{"name", "type": "personal_chat" | "private_group" | ..., "id", "messages": [...]}`;
- the whole account: `{"personal_information", "chats": {"list": [chat, chat, ...]}, ...}`, one
  conversation per chat.
A message is `{"id", "type": "message" | "service", "date", "date_unixtime", "from" | "actor",
"text", ...}`: `text` is a string or an array of strings and entities (`{"type": "link", "text":
...}`), concatenated as written; the instant comes from `date_unixtime` where present, else `date`
is read as local time; media are typed from `media_type`, `photo`, `file`, `location_information`,
`contact_information`; service messages (calls, joins, pins) are `system` (a call: `call`).
A message without a date or a sender is quarantined with its reason.

Nothing here imports Prefect. The file is read whole with `json.load` (a streaming reader is
future work: an export's size is mostly its media, which live beside it, not in it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from parsers.base import ParseBatch, ParseContext, build_messages, build_quarantine, with_conversations
from parsers.errors import InputError
from schemas.message import TS_TYPE

SOURCE = "telegram_json"
_BATCH = 20_000
_MEDIA = {
    "voice_message": "voice", "audio_file": "voice", "video_message": "video", "video_file": "video",
    "animation": "video", "sticker": "emoticon",
}  # fmt: skip


def sniff(sample: str) -> bool:
    """Whether the head of a text looks like a Telegram Desktop JSON export."""
    head = sample.lstrip()[:65536]
    return head.startswith("{") and (
        '"personal_information"' in head
        or ('"messages"' in head and ('"date_unixtime"' in head or '"from_id"' in head))
    )


def chats(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The chats of an export: its list (whole account) or itself (one chat)."""
    listed = (document.get("chats") or {}).get("list")
    if isinstance(listed, list):
        return [c for c in listed if isinstance(c, dict)]
    return [document] if isinstance(document.get("messages"), list) else []


def flatten_text(text: Any) -> str:
    """`text` as written: a string, or strings and entities (`{"text": ...}`) concatenated."""
    if isinstance(text, str):
        return text
    if isinstance(text, list):
        return "".join(p if isinstance(p, str) else str((p or {}).get("text", "")) for p in text)
    return ""


def _kind(message: dict[str, Any]) -> str:
    if message.get("type") == "service":
        return "call" if message.get("action") in ("phone_call", "group_call") else "system"
    if message.get("media_type") in _MEDIA:
        return _MEDIA[message["media_type"]]
    if "photo" in message:
        return "photo"
    if "location_information" in message:
        return "location"
    if "contact_information" in message:
        return "contact"
    if "file" in message:
        return "file"
    return "text"


def _placeholder(message: dict[str, Any], kind: str) -> str:
    if message.get("type") == "service":
        actor = message.get("actor") or ""
        return " ".join(x for x in (actor, str(message.get("action", "")).replace("_", " ")) if x)
    emoji = message.get("sticker_emoji")
    return f"[{kind}{' ' + emoji if emoji else ''}]"


def conversation_id(owner_id: str, chat: dict[str, Any]) -> str:
    """One conversation per chat, by Telegram's chat id (else its name), within the owner."""
    key = str(chat.get("id") or chat.get("name") or "")
    return "telegram-" + hashlib.sha256(f"{owner_id}|{key}".encode()).hexdigest()[:16]


def parse_export(path: Path, ctx: ParseContext, display_name: str | None = None) -> Iterator[ParseBatch]:
    """Messages (each with its chat's conversation id) and quarantined records, in batches."""
    try:
        with path.open("rb") as handle:
            document = json.load(handle)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            display_name or str(path), f"not valid Telegram JSON ({exc}); export it again"
        ) from None
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
            seconds = _seconds(message, ctx)
            speaker = message.get("from") if message.get("type") != "service" else None
            if seconds is None or (message.get("type") == "message" and not speaker):
                rejected[0].append(record)
                rejected[1].append("no date" if seconds is None else "no sender")
                rejected[2].append(json.dumps(message, ensure_ascii=False)[:2000])
                continue
            kind = _kind(message)
            text = flatten_text(message.get("text")) or _placeholder(message, kind)
            for key, value in (("ts", seconds), ("speaker", speaker), ("text", text), ("kind", kind),
                               ("record", record), ("thread", thread)):  # fmt: skip
                rows[key].append(value)
            if len(rows["ts"]) >= _BATCH:
                yield _batch(rows, rejected, ctx)
                rows = {k: [] for k in rows}
                rejected = ([], [], [])
    yield _batch(rows, rejected, ctx)


def _seconds(message: dict[str, Any], ctx: ParseContext) -> float | None:
    """The instant (UTC seconds): `date_unixtime`, else `date` read in the context's zone."""
    try:
        if message.get("date_unixtime") not in (None, ""):
            return float(message["date_unixtime"])
        local = datetime.fromisoformat(str(message["date"]))
    except (KeyError, ValueError, TypeError):
        return None
    from zoneinfo import ZoneInfo

    return local.replace(tzinfo=local.tzinfo or ZoneInfo(ctx.timezone)).timestamp()


def _batch(
    rows: dict[str, list[Any]], rejected: tuple[list[int], list[str], list[str]], ctx: ParseContext
) -> ParseBatch:
    micros = (np.array(rows["ts"], dtype=np.float64) * 1_000_000).astype(np.int64)
    table = build_messages(
        ctx,
        SOURCE,
        pa.array(micros, pa.timestamp("us", tz="UTC")).cast(TS_TYPE),
        pa.array(rows["speaker"], pa.string()),
        pa.array(rows["text"], pa.string()),
        pa.array(rows["kind"], pa.string()),
        np.array(rows["record"], dtype=np.int64),
    )
    return ParseBatch(with_conversations(table, rows["thread"]), build_quarantine(ctx, *rejected))
