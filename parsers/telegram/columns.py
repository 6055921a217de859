"""A Telegram export read column-wise: one typed decode, then each field handled once as a column.

`msgspec` decodes the document into the few fields a row needs and skips the rest without building
it; `text` stays raw JSON, and the texts that are plain JSON strings (no escape) become Arrow
strings straight from their bytes, without a Python string each. Only the other messages
(entities, escapes, media, service, a missing date or sender) go one by one, through the plain
reader's functions (`rows.py`). The typed shape is narrow on purpose: a document it does not cover
(a field of an unexpected JSON type, a message that is not an object, invalid JSON or UTF-8,
another encoding) raises `ShapeError`, and the caller reads it the plain way, which defines the
results; tests compare both on generated documents.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from msgspec import UNSET, Raw, UnsetType

from parsers.base import plausible_seconds
from parsers.telegram.rows import (
    Rows,
    conversation_id,
    deleted_account,
    flatten_text,
    instant,
    kind_of,
    placeholder,
)
from parsers.typed_json import ShapeError, decode

_NULL = Raw(b"null")
_QUOTE, _BACKSLASH, _ZERO = 34, 92, 48
#: The most decimal digits a float64 holds exactly.
_EXACT_DIGITS = 15


class _Message(msgspec.Struct, gc=False):
    type: str | None = None
    # Raw: read as columns from their bytes (`_unix_seconds`, `_json_strings`), not string by string.
    date_unixtime: Raw = _NULL
    sender: Raw = msgspec.field(default=_NULL, name="from")
    text: Raw = _NULL
    media_type: str | None = None
    photo: Raw | UnsetType = UNSET
    file: Raw | UnsetType = UNSET
    location_information: Raw | UnsetType = UNSET
    contact_information: Raw | UnsetType = UNSET
    action: str | UnsetType | None = UNSET
    actor: str | None = None
    sticker_emoji: str | None = None


class _Chat(msgspec.Struct, gc=False):
    id: Raw | UnsetType = UNSET
    name: Raw | UnsetType = UNSET
    messages: list[_Message] | None = None


class _Chats(msgspec.Struct, gc=False):
    items: list[_Chat] | None = msgspec.field(default=None, name="list")


class _Document(_Chat, gc=False):
    chats: _Chats | None = None
    left_chats: _Chats | None = None


class _Dated(msgspec.Struct, gc=False):
    date: Raw = _NULL


class _FromId(msgspec.Struct, gc=False):
    from_id: Raw = _NULL


def _second_pass(message: Any, name: str) -> msgspec.json.Decoder[Any]:
    """A decoder of the export's shape (one chat, or an account's lists of chats) around `message`s."""
    chat = msgspec.defstruct(f"{name}Chat", [("messages", list[message] | None, None)], gc=False)
    field = msgspec.field(default=None, name="list")
    chats = msgspec.defstruct(f"{name}Chats", [("items", list[chat] | None, field)], gc=False)  # type: ignore[valid-type]
    document = msgspec.defstruct(
        f"{name}Document",
        [("chats", chats | None, None), ("left_chats", chats | None, None)],
        bases=(chat,),
        gc=False,
    )
    return msgspec.json.Decoder(document)


_DECODER = msgspec.json.Decoder(_Document)
#: Second passes over the same bytes, for what few exports need: each message's raw JSON (for the
#: quarantine), its `date` (where `date_unixtime` is missing), its `from_id` (a deleted account).
_RAW_DECODER = _second_pass(Raw, "_Raw")
_DATES_DECODER = _second_pass(_Dated, "_Dated")
_FROM_ID_DECODER = _second_pass(_FromId, "_FromId")


def read(data: bytes, owner_id: str, timezone: str) -> Rows:
    """The rows and rejected messages of an export's bytes; `ShapeError` outside the typed shape."""
    messages, threads = _messages(_decode(data), owner_id)
    seconds, dated = _instants(data, messages, timezone)
    in_range = dated & plausible_seconds(seconds)
    speakers, silent = _speakers(data, messages, owner_id)
    rejected = ~in_range | silent
    records = np.arange(1, len(messages) + 1, dtype=np.int64)
    quarantine: tuple[list[int], list[str], list[str]] = ([], [], [])
    if rejected.any():
        positions = np.flatnonzero(rejected)
        reasons = [
            "no date" if not dated[i] else "date out of range" if not in_range[i] else "no sender"
            for i in positions.tolist()
        ]
        quarantine = _quarantine(data, positions, reasons)
        keep = ~rejected
        messages = [messages[i] for i in np.flatnonzero(keep).tolist()]
        seconds, records = seconds[keep], records[keep]
        speakers, threads = speakers.filter(pa.array(keep)), threads.filter(pa.array(keep))
    kinds = [
        "text"
        if m.type != "service"
        and m.media_type is None
        and m.photo is UNSET
        and m.file is UNSET
        and m.location_information is UNSET
        and m.contact_information is UNSET
        else kind_of(_fields(m))
        for m in messages
    ]
    return Rows(seconds, speakers, _texts(messages, kinds), kinds, records, threads, quarantine)


def _decode(data: bytes) -> _Document:
    """The typed document; `ShapeError` where `json.loads` would not read the bytes the same."""
    found: _Document = decode(_DECODER, data)
    return found


def _messages(document: _Document, owner_id: str) -> tuple[list[_Message], pa.Array]:
    """Every message of the export's chats (chosen as `export.chats` does) and its conversation."""
    chats = _chats(document)
    if chats is None:
        chats = [document] if document.messages is not None else []
    messages: list[_Message] = []
    threads = [pa.array([], pa.string())]
    for chat in chats:
        found = chat.messages or []
        identity = {k: _load(v) for k, v in (("id", chat.id), ("name", chat.name)) if v is not UNSET}
        messages += found
        threads.append(pa.repeat(pa.scalar(conversation_id(owner_id, identity), pa.string()), len(found)))
    return messages, pa.concat_arrays(threads)


def _speakers(data: bytes, messages: list[_Message], owner_id: str) -> tuple[pa.Array, np.ndarray]:
    """Each message's speaker (none for a service message), and which messages lack one they need.

    `ShapeError` where a sender is neither a string nor null (the plain reader decides those).
    """
    types = [m.type for m in messages]
    raws = [m.sender for m in messages]
    strings, other = _json_strings(raws)
    if not other.any() and types.count("message") == len(types) and pc.min(pc.binary_length(strings)).as_py():
        return strings, np.zeros(len(messages), dtype=bool)  # the usual export: all said by someone
    senders = strings.to_pylist()
    unnamed = []
    for i in np.flatnonzero(other).tolist():
        senders[i] = _load(raws[i])
        if senders[i] is not None and not isinstance(senders[i], str):
            raise ShapeError
        if senders[i] is None and types[i] == "message":
            unnamed.append(i)
    if unnamed:  # deleted accounts: named by their `from_id` (a second pass over the bytes)
        ids = [m.from_id for m in _each_message(_FROM_ID_DECODER.decode(data))]
        for i in unnamed:
            senders[i] = deleted_account(owner_id, _load(ids[i]))
    kinds = pa.array(types, pa.string())
    speakers = pc.if_else(
        _flags(pc.equal(kinds, "service")), pa.scalar(None, pa.string()), pa.array(senders, pa.string())
    )
    silent = _flags(pc.equal(kinds, "message")) & ~_flags(pc.greater(pc.binary_length(speakers), 0))
    return speakers, silent


def _instants(data: bytes, messages: list[_Message], timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC seconds of each message, and whether it has any (`rows.instant`)."""
    raws = [m.date_unixtime for m in messages]
    seconds = _unix_seconds(raws)
    if seconds is not None:
        return seconds, np.ones(len(messages), dtype=bool)
    values = [_load(r) for r in raws]
    dates = (
        [d.date for d in _each_message(_DATES_DECODER.decode(data))]
        if any(v is None or v == "" for v in values)
        else [_NULL] * len(values)
    )
    # `instant` reads `date` only where `date_unixtime` is missing or empty.
    found = [
        instant(
            {"date_unixtime": v, "date": _load(d)} if v is None or v == "" else {"date_unixtime": v}, timezone
        )
        for d, v in zip(dates, values, strict=True)
    ]
    dated = np.array([s is not None for s in found], dtype=bool)
    return np.array([0.0 if s is None else s for s in found], dtype=np.float64), dated


def _unix_seconds(raws: list[Raw]) -> np.ndarray | None:
    """The values as numbers where all are JSON strings of digits of one length, else None.

    Up to 15 digits, which `float` reads exactly.
    """
    if not raws:
        return None
    lengths = np.fromiter(map(len, raws), dtype=np.int64, count=len(raws))
    width = int(lengths[0])
    if not 2 < width <= _EXACT_DIGITS + 2 or (lengths != width).any():
        return None
    chars = np.frombuffer(b"".join(raws), dtype=np.uint8).reshape(len(raws), width)
    if (chars[:, 0] != _QUOTE).any() or (chars[:, -1] != _QUOTE).any():
        return None
    digits = chars[:, 1:-1] - np.uint8(_ZERO)
    if (digits > 9).any():
        return None
    number = np.zeros(len(raws), dtype=np.int64)
    for column in digits.T:
        number = number * 10 + column
    return number.astype(np.float64)


def _texts(messages: list[_Message], kinds: list[str]) -> pa.Array:
    """The text of each message: its string, else entities concatenated, else its placeholder."""
    strings, other = _json_strings([m.text for m in messages])
    other |= ~_flags(pc.greater(pc.binary_length(strings), 0))
    values = [
        flatten_text(_load(messages[i].text)) or placeholder(_fields(messages[i]), kinds[i])
        for i in np.flatnonzero(other).tolist()
    ]
    return pc.replace_with_mask(strings, pa.array(other), pa.array(values, pa.string()))


def _json_strings(raws: list[Raw]) -> tuple[pa.Array, np.ndarray]:
    """Raw JSON values as Arrow strings where they are strings without escapes, and which are not.

    The values not taken (`True` in the mask) hold leftover bytes: the caller replaces them.
    """
    if not raws:
        return pa.array([], pa.string()), np.zeros(0, dtype=bool)
    offsets = np.zeros(len(raws) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, raws), dtype=np.int64, count=len(raws)), out=offsets[1:])
    buffer = b"".join(raws)  # every raw value is at least one byte long
    quoted = pa.Array.from_buffers(
        pa.large_binary(), len(raws), [None, pa.py_buffer(offsets), pa.py_buffer(buffer)]
    )
    chars = np.frombuffer(buffer, dtype=np.uint8)
    plain = chars[offsets[:-1]] == _QUOTE
    escapes = np.flatnonzero(chars == _BACKSLASH)
    if escapes.size:
        plain[np.searchsorted(offsets, escapes, side="right") - 1] = False
    # Inside a valid UTF-8 document, bytes between two ASCII bytes are valid UTF-8 too.
    inner = pc.binary_slice(quoted, 1, -1).view(pa.large_string()).cast(pa.string())
    return inner, ~plain


def _quarantine(
    data: bytes, positions: np.ndarray, reasons: list[str]
) -> tuple[list[int], list[str], list[str]]:
    """Quarantine columns of the rejected messages: record, reason, the message as JSON."""
    raws = _each_message(_RAW_DECODER.decode(data))
    dumps = [json.dumps(_load(raws[i]), ensure_ascii=False)[:2000] for i in positions]
    return [int(i) + 1 for i in positions], reasons, dumps


def _each_message(document: Any) -> list[Any]:
    """The messages of a second pass's document, chats chosen as `_messages` chooses them."""
    chats = _chats(document)
    return [m for c in (chats if chats is not None else [document]) for m in c.messages or []]


def _chats(document: Any) -> list[Any] | None:
    """A whole-account document's chats, then its left chats (`export.chats`); None: not one."""
    lists = [s.items for s in (document.chats, document.left_chats) if s is not None and s.items is not None]
    return [chat for listed in lists for chat in listed] if lists else None


def _fields(message: _Message) -> dict[str, Any]:
    """The decoded fields a message has, as the plain reader's functions take them."""
    return {k: v for k, v in msgspec.structs.asdict(message).items() if v is not UNSET}


def _flags(mask: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null read as false."""
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _load(raw: Raw) -> Any:
    """A raw JSON value as `json.loads` reads it."""
    return json.loads(bytes(raw))
