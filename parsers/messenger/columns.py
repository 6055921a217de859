"""A Messenger or Instagram part read column-wise: one typed decode, then each field handled once.

`msgspec` decodes the part into the few fields a row needs and skips the rest without building it;
sender, time and content are gathered with list comprehensions, and the mojibake is repaired for a
whole column at once (one latin-1 encode, one UTF-8 check in Arrow) instead of string by string.
Only the other messages (media, calls, shares, joins, no content, no sender or time) go one by
one, through the plain reader's functions (`rows.py`). The typed shape is narrow on purpose: a
part it does not cover (a field of an unexpected JSON type, a message that is not an object,
invalid JSON or UTF-8, another encoding) raises `ShapeError`, and the caller reads it the plain
way, which defines the results; tests compare both on generated documents.
"""

from __future__ import annotations

import json
import operator
from itertools import repeat
from pathlib import Path
from typing import Any, cast

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from msgspec import UNSET, Raw, UnsetType

from parsers.base import END_SECOND, FIRST_SECOND, plausible_seconds
from parsers.messenger.rows import E2EE_MARKS, Rows, conversation_id, kind_and_text, repair
from parsers.typed_json import ShapeError, decode

#: `type`s that make a message other than its content (a call, a join or leave).
_SPECIAL = frozenset(("Call", "Subscribe", "Unsubscribe"))


class _Share(msgspec.Struct, gc=False):
    link: str | UnsetType | None = UNSET


class _Message(msgspec.Struct, gc=False):
    sender_name: str | None = None
    timestamp_ms: int | UnsetType | None = UNSET
    content: str | None = None
    type: str | None = None
    call_duration: int | UnsetType | None = UNSET
    is_unsent: bool | UnsetType | None = UNSET
    # Only whether each holds anything counts; none holds a Raw, which would keep the file's bytes.
    photos: list[Any] | None = None
    videos: list[Any] | None = None
    gifs: list[Any] | None = None
    audio_files: list[Any] | None = None
    sticker: dict[str, Any] | None = None
    files: list[Any] | None = None
    share: _Share | UnsetType | None = UNSET


class _Participant(msgspec.Struct, gc=False):
    name: str | UnsetType | None = UNSET


class _Thread(msgspec.Struct, gc=False):
    messages: list[_Message]
    participants: list[_Participant] | UnsetType | None = UNSET
    title: str | UnsetType | None = UNSET
    thread_path: str | UnsetType | None = UNSET


class _RawThread(msgspec.Struct, gc=False):
    messages: list[Raw]


_DECODER = msgspec.json.Decoder(_Thread)
_RAW_DECODER = msgspec.json.Decoder(_RawThread)


def read(path: Path, owner_id: str) -> tuple[Rows, str]:
    """A part's rows (oldest first) and its conversation; `ShapeError` outside the typed shape."""
    data = path.read_bytes()
    thread = _decode(data)
    messages = thread.messages[::-1]
    senders = [m.sender_name for m in messages]
    stamps = [m.timestamp_ms for m in messages]
    reasons = _reasons(senders, stamps)
    # An end-to-end-encrypted chat's export has no `sender_name`s (and most have string
    # participants, which the typed decode refuses): the plain reader reshapes it.
    if reasons and any(mark in data for mark in E2EE_MARKS):
        raise ShapeError
    rejected = _rejected(data, reasons, len(messages))
    del data  # the file's bytes go before the columns are built (nothing decoded refers to them)
    if reasons:
        keep = [i for i in range(len(messages)) if i not in reasons]
        messages, senders, stamps = (
            [messages[i] for i in keep],
            [senders[i] for i in keep],
            [stamps[i] for i in keep],
        )
        records: list[int] | np.ndarray = [i + 1 for i in keep]
    else:
        records = np.arange(1, len(messages) + 1, dtype=np.int64)
    kinds, texts = _kinds_and_texts(messages)
    # Every sender and time left is a string and an integer (`_reasons`).
    rows = Rows(
        cast("list[int]", stamps), repaired(cast("list[str]", senders)), texts, kinds, records, rejected
    )
    return rows, conversation_id(owner_id, _fields(thread, ("thread_path", "title", "participants")))


def _decode(data: bytes) -> _Thread:
    """The typed document; `ShapeError` where `json.loads` would not read the bytes the same."""
    found: _Thread = decode(_DECODER, data)
    return found


def _reasons(senders: list[str | None], stamps: list[int | UnsetType | None]) -> dict[int, str]:
    """Why each rejected message (by position, oldest first) is: no sender, no time, or a time out of range.

    The reasons and their order are `rows.rejection`'s (every sender here is a string or none).
    """
    if all(senders) and UNSET not in stamps and None not in stamps:
        try:
            found = np.array(stamps, dtype=np.int64)
        except OverflowError:
            found = None
        if found is not None and plausible_seconds(found // 1000).all():
            return {}
    reasons = {}
    for i, (s, t) in enumerate(zip(senders, stamps, strict=True)):
        if not s or t is UNSET or t is None:
            reasons[i] = "no sender" if not s and t is not UNSET else "no time"
        elif not FIRST_SECOND * 1000 <= t < END_SECOND * 1000:
            reasons[i] = "time out of range"
    return reasons


def _kinds_and_texts(messages: list[_Message]) -> tuple[list[str], pa.Array]:
    """Kind and repaired text of each message: its content, unless it is more than its content."""
    texts = [m.content for m in messages]
    calls = [m.call_duration for m in messages]
    types = [m.type for m in messages]
    unsent = [m.is_unsent for m in messages]
    kinds = ["text"] * len(messages)
    if all(texts) and calls.count(UNSET) == len(calls) and _SPECIAL.isdisjoint(types) and True not in unsent:
        return kinds, repaired(cast("list[str]", texts))
    other = np.fromiter(map(operator.not_, texts), dtype=bool, count=len(texts))
    other |= np.fromiter(map(operator.is_not, calls, repeat(UNSET)), dtype=bool, count=len(calls))
    other |= np.fromiter(map(_SPECIAL.__contains__, types), dtype=bool, count=len(types))
    other |= np.fromiter(map(operator.is_, unsent, repeat(True)), dtype=bool, count=len(unsent))
    found: list[str] = []
    for i in np.flatnonzero(other).tolist():
        kinds[i], text = kind_and_text(_fields(messages[i]))
        found.append(text)
        texts[i] = ""
    column = repaired(cast("list[str]", texts))
    return kinds, pc.replace_with_mask(column, pa.array(other), pa.array(found, pa.string()))


def repaired(values: list[str]) -> pa.Array:
    """`repair` of each string, for the whole column at once where every one is latin-1.

    The strings' latin-1 bytes (one per character) are the repaired strings' UTF-8 where each is
    valid UTF-8 (Arrow checks that string by string); else each string is repaired alone.
    """
    if not values:
        return pa.array([], pa.string())
    try:
        buffer = "".join(values).encode("latin-1")
    except UnicodeEncodeError:
        return pa.array([repair(v) for v in values], pa.string())
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values)), out=offsets[1:])
    joined = pa.Array.from_buffers(
        pa.large_binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(buffer)]
    )
    try:
        return joined.cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array([repair(v) for v in values], pa.string())


def _rejected(data: bytes, reasons: dict[int, str], count: int) -> tuple[list[int], list[str], list[str]]:
    """Quarantine columns of the rejected messages: record, reason, the message as JSON (repaired)."""
    if not reasons:
        return [], [], []
    raws = _RAW_DECODER.decode(data).messages
    dumps = [repair(json.dumps(_load(raws[count - 1 - i]), ensure_ascii=False))[:2000] for i in reasons]
    return [i + 1 for i in reasons], list(reasons.values()), dumps


def _fields(struct: msgspec.Struct, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A decoded object's fields that it has, as `json.loads` gives them (raw JSON loaded)."""
    found = msgspec.structs.asdict(struct)
    return {k: _plain(v) for k, v in found.items() if v is not UNSET and (names is None or k in names)}


def _plain(value: Any) -> Any:
    """A decoded value as `json.loads` gives it."""
    if isinstance(value, Raw):
        return _load(value)
    if isinstance(value, msgspec.Struct):
        return _fields(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _load(raw: Raw) -> Any:
    """A raw JSON value as `json.loads` reads it."""
    return json.loads(bytes(raw))
