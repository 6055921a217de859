"""What both Telegram readers (typed and plain) share: how a message reads, and the batches they yield.

The message functions here take a message as `json.loads` gives it (a dict); they define the rows,
and the typed reader calls them for every message it does not take column-wise.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    with_conversations,
)
from schemas.message import TS_TYPE

SOURCE = "telegram_json"
MEDIA = {
    "voice_message": "voice", "audio_file": "voice", "video_message": "video", "video_file": "video",
    "animation": "video", "sticker": "emoticon",
}  # fmt: skip
_CALLS = ("phone_call", "group_call")


@dataclass(frozen=True)
class Rows:
    """An export's accepted messages as columns, and its rejected ones (record, reason, raw JSON)."""

    seconds: Sequence[float] | np.ndarray
    speakers: Sequence[str | None] | pa.Array
    texts: Sequence[str] | pa.Array
    kinds: Sequence[str] | pa.Array
    #: 1-based position of each message among all messages of the export (chats in order).
    records: Sequence[int] | np.ndarray
    threads: Sequence[str] | pa.Array
    rejected: tuple[list[int], list[str], list[str]]


def conversation_id(owner_id: str, chat: dict[str, Any]) -> str:
    """One conversation per chat, by Telegram's chat id (else its name), within the owner."""
    key = str(chat.get("id") or chat.get("name") or "")
    return "telegram-" + hashlib.sha256(f"{owner_id}|{key}".encode()).hexdigest()[:16]


def flatten_text(text: Any) -> str:
    """`text` as written: a string, or strings and entities (`{"text": ...}`) concatenated."""
    if isinstance(text, str):
        return text
    if isinstance(text, list):
        return "".join(
            p if isinstance(p, str) else str(p.get("text", "")) if isinstance(p, dict) else "" for p in text
        )
    return ""


def kind_of(message: dict[str, Any]) -> str:
    """A message's kind: a call or `system` (service), else from its media fields, else `text`."""
    if message.get("type") == "service":
        return "call" if message.get("action") in _CALLS else "system"
    media_type = message.get("media_type")
    if isinstance(media_type, str) and media_type in MEDIA:
        return MEDIA[media_type]
    if "photo" in message:
        return "photo"
    if "location_information" in message:
        return "location"
    if "contact_information" in message:
        return "contact"
    if "file" in message:
        return "file"
    return "text"


def placeholder(message: dict[str, Any], kind: str) -> str:
    """The text of a message without any: a service's actor and action, else `[kind emoji]`."""
    if message.get("type") == "service":
        actor = message.get("actor")
        action = str(message.get("action", "")).replace("_", " ")
        return " ".join(x for x in (actor if isinstance(actor, str) else "", action) if x)
    emoji = message.get("sticker_emoji")
    return f"[{kind}{' ' + emoji if emoji and isinstance(emoji, str) else ''}]"


def instant(message: dict[str, Any], timezone: str) -> float | None:
    """The instant (UTC seconds): `date_unixtime`, else `date` read in `timezone`; None without either."""
    try:
        if message.get("date_unixtime") not in (None, ""):
            return float(message["date_unixtime"])
        local = datetime.fromisoformat(str(message["date"]))
    except (KeyError, ValueError, TypeError, OverflowError):
        return None
    from zoneinfo import ZoneInfo

    return local.replace(tzinfo=local.tzinfo or ZoneInfo(timezone)).timestamp()


def deleted_account(owner_id: str, from_id: Any) -> str | None:
    """The speaker of a message whose sender's account is gone, or None without a `from_id`.

    Telegram writes a deleted account's name as `"from": null` beside its `from_id` (and deletes an
    account after months without use: the people a family restores are often such accounts). The
    name is a stable handle per account and owner, like a phone number's, never the id itself;
    `--alias` names the persona by it.
    """
    if not isinstance(from_id, str) or not from_id:
        return None
    return "삭제된 계정 " + hashlib.sha256(f"{owner_id}|{from_id}".encode()).hexdigest()[:6]


def rejection(seconds: float | None, speaker: Any, needs_speaker: bool) -> str | None:
    """Why a message is quarantined, if it is: no date, a date out of range, no sender, a sender not text."""
    if seconds is None:
        return "no date"
    if not FIRST_SECOND <= seconds < END_SECOND:
        return "date out of range"
    if needs_speaker and not speaker:
        return "no sender"
    if speaker and not isinstance(speaker, str):
        return "sender not text"
    return None


def batches(rows: Rows, ctx: ParseContext, size: int, source: str = SOURCE) -> Iterator[ParseBatch]:
    """Batches of `size` messages (then the rest, maybe none), each with the rejections read before it.

    `source` is the rows' Message `source` (the JSON export's unless told: the HTML reader's too).
    """
    micros = (np.asarray(rows.seconds, dtype=np.float64) * 1_000_000).astype(np.int64)
    ts = pa.array(micros, pa.timestamp("us", tz="UTC")).cast(TS_TYPE)
    speakers, texts, kinds, threads = (
        pa.array(c, pa.string()) for c in (rows.speakers, rows.texts, rows.kinds, rows.threads)
    )
    records = np.asarray(rows.records, dtype=np.int64)
    n, done = len(records), 0
    for start in range(0, n + 1, size):
        end = min(start + size, n)
        cut = (
            bisect_right(rows.rejected[0], records[end - 1]) if end - start == size else len(rows.rejected[0])
        )
        table = build_messages(
            ctx,
            source,
            ts[start:end],
            speakers[start:end],
            texts[start:end],
            kinds[start:end],
            records[start:end],
        )
        records_out, reasons, raws = rows.rejected
        quarantine = build_quarantine(ctx, records_out[done:cut], reasons[done:cut], raws[done:cut])
        done = cut
        yield ParseBatch(with_conversations(table, threads[start:end]), quarantine)
