"""Byte-level, vectorised reading of the plain `<sms .../>` elements of a chunk with numpy.

A segment (parsers/sms/chunks.py) is read here only where it is certainly a well-formed `<sms`
element the exact path would read the same way; anything else (`<mms>`, closing tags, other
quoting or spacing, a missing date, control characters, an unknown entity, a duplicate
attribute, ...) is left to the exact XML parser.

The double quotes of a candidate pair up into its attribute values; the bytes before each value
(`" name="`) and after the last one (`" />` and the whitespace after it) are checked as short
fixed-width keys, each distinct key once in Python, and name the values, so a million elements
cost a few dozen numpy passes. Strings are cut out of the chunk through Arrow string views.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa

from parsers.base import plausible_seconds
from parsers.sms.chunks import FRONT, Chunk
from parsers.sms.keys import KEY, KeyTable
from parsers.sms.refs import RefReader
from parsers.sms.values import Amps, Coded, Texts, Values, keys_after, keys_before, numbers, pair

_WS: Final = (9, 10, 13, 32)
_LT, _EQ = 60, 61
_NAME: Final = re.compile(rb"[ \t\r\n]+([A-Za-z_][A-Za-z0-9_.\-]*)\Z")
_TAIL: Final = re.compile(rb"[ \t\r\n]*/>[ \t\r\n]*\Z")
#: Attributes the rows need, by their fixed name ids.
DATE, TYPE, ADDRESS, CONTACT, BODY = range(5)
_FIELDS: Final = (b"date", b"type", b"address", b"contact_name", b"body")
_MAX_NAMES: Final = 64  # a name with a higher id is left to the exact path (duplicates: 64-bit sets)


class Keys:
    """What the keys of a file's markup are: attribute names (ids) and element ends."""

    def __init__(self) -> None:
        """No key seen yet; the fields' names have their fixed ids."""
        self.names = {name: i for i, name in enumerate(_FIELDS)}
        self.name_table = KeyTable(self._name_id)
        self.tail_table = KeyTable(self._tail_ok)
        self.refs = RefReader()

    def name_ids(self, keys: np.ndarray) -> np.ndarray:
        """The name id of each whitespace-and-name key (rows of KEY bytes); -1 where it is not one."""
        ids: np.ndarray = self.name_table.lookup(keys)
        return ids

    def tails_ok(self, keys: np.ndarray) -> np.ndarray:
        """Whether each tail key is `/>` between whitespace."""
        ok: np.ndarray = self.tail_table.lookup(keys) == 1
        return ok

    def _name_id(self, key: bytes) -> int:
        match = _NAME.match(key[KEY - key[0] :]) if 0 < key[0] < KEY else None
        name = match[1] if match else b"xmlns"  # `xmlns` would declare a namespace
        return -1 if name == b"xmlns" else self.names.setdefault(name, len(self.names))

    def _tail_ok(self, key: bytes) -> int:
        return int(0 < key[0] < KEY and _TAIL.match(key[1 : 1 + key[0]]) is not None)


@dataclass
class Fast:
    """The segments read here (`ok`) and, for each of them in order, its fields."""

    ok: np.ndarray
    date: np.ndarray  # int64 milliseconds
    mine: np.ndarray
    address: Coded
    contact: Coded
    body: pa.Array


def read_fast(chunk: Chunk, keys: Keys) -> Fast:
    """Which segments are plain `<sms .../>` elements, and their fields."""
    buf, starts, quotes = chunk.buf, chunk.starts, chunk.quotes
    ok = _sms_heads(buf, starts)
    first_quote = np.searchsorted(quotes, starts)
    count = np.diff(np.append(first_quote, len(quotes)))
    ok &= (count >= 2) & (count % 2 == 0)
    if not _valid_utf8(chunk.body):
        ok[:] = False
    ef = chunk.ef + FRONT  # U+FFFE, U+FFFF: not XML characters
    bad_ef = chunk.ef[(buf[ef + 1] == 0xBF) & ((buf[ef + 2] == 0xBE) | (buf[ef + 2] == 0xBF))]
    ok[np.searchsorted(starts, bad_ef, side="right") - 1] = False
    values = pair(quotes[np.repeat(ok, count)], np.flatnonzero(ok), count[ok] // 2)
    bad, ids = _names(buf, starts, values, keys)
    inside = _inside(values, chunk.controls)
    bad[inside[inside >= 0]] = True  # invalid, or whitespace the parser would normalise
    holder = _inside(values, chunk.amps)
    inside = holder >= 0
    refs = keys.refs(buf, chunk.amps[inside] + FRONT)
    bad[holder[inside][~refs.valid]] = True
    ok &= np.bincount(values.segment[bad], minlength=len(starts)) == 0
    ok &= _tails_ok(chunk, values, keys)
    return _fields(chunk, values, ids, ok, Amps(chunk.amps[inside], holder[inside], refs))


def _sms_heads(buf: np.ndarray, starts: np.ndarray) -> np.ndarray:
    at = starts + FRONT
    head = (
        (buf[at] == _LT) & (buf[at + 1] == ord("s")) & (buf[at + 2] == ord("m")) & (buf[at + 3] == ord("s"))
    )
    heads: np.ndarray = head & np.isin(buf[at + 4], _WS)
    return heads


def _valid_utf8(data: np.ndarray) -> bool:
    offsets = pa.py_buffer(np.array([0, len(data)], np.int32))
    try:
        pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _names(buf: np.ndarray, starts: np.ndarray, values: Values, keys: Keys) -> tuple[np.ndarray, np.ndarray]:
    """Per value: whether what precedes it is not whitespace, a new name and `="`; the name's id.

    A name twice in a segment marks its first value (its set of names is smaller than its count).
    """
    begin = np.empty(len(values.closes), np.int64)
    begin[1:] = values.closes[:-1] + 1
    heads = values.heads
    begin[heads] = starts[values.segment[heads]] + 4  # after `<sms`
    end = values.opens - 1  # the `=`
    length = end - begin
    bad = (buf[end + FRONT] != _EQ) | (length < 2) | (length >= KEY)
    ids = keys.name_ids(keys_before(buf, end, np.where(bad, 0, length)))
    bad |= (ids < 0) | (ids >= _MAX_NAMES)
    if len(ids):
        bits = np.left_shift(np.uint64(1), ids.astype(np.uint64) & np.uint64(_MAX_NAMES - 1))
        bad[heads] |= np.bitwise_count(np.bitwise_or.reduceat(bits, heads)) < values.sizes
    return bad, ids


def _tails_ok(chunk: Chunk, values: Values, keys: Keys) -> np.ndarray:
    """Per segment: whether what follows its last value is `/>` between whitespace."""
    ok = np.zeros(len(chunk.starts), bool)
    if not len(values.heads):
        return ok
    last = values.heads + values.sizes - 1
    segment = values.segment[last]
    begin = values.closes[last] + 1
    length = chunk.ends[segment] - begin
    length = np.where(length < KEY, length, 0)
    ok[segment] = keys.tails_ok(keys_after(chunk.buf, begin, length))
    return ok


def _inside(values: Values, positions: np.ndarray) -> np.ndarray:
    """For each of the sorted `positions`, the value holding it (-1: none)."""
    j = np.searchsorted(values.bounds, positions, side="right")
    return np.where(j % 2 == 1, (j - 1) // 2, -1)


def _fields(chunk: Chunk, values: Values, ids: np.ndarray, ok: np.ndarray, amps: Amps) -> Fast:
    """The fields of the `ok` segments; one with no plain date, or a type with a reference, is not."""
    rank = np.cumsum(ok) - 1
    chosen = np.flatnonzero(ok[values.segment] & (ids < len(_FIELDS)))  # a bad id's segment is not ok
    which = np.full((len(_FIELDS), int(ok.sum())), -1, np.int64)  # each field's value per segment
    which[ids[chosen], rank[values.segment[chosen]]] = chosen
    texts = Texts(chunk, values, amps)
    date, usable = numbers(chunk.buf, *values.span(which[DATE]))
    usable &= plausible_seconds(date // 1000)  # the exact reader says why one is not
    usable &= ~texts.with_ref[which[TYPE]]
    ok[np.flatnonzero(ok)[~usable]] = False
    pick = np.flatnonzero(usable)
    begin, end = values.span(which[TYPE][pick])
    first = chunk.buf[begin + FRONT]
    mine = (end - begin == 1) & (first >= ord("2")) & (first <= ord("6"))  # records.MINE: "2" to "6"
    address, contact = texts.coded(which[ADDRESS][pick]), texts.coded(which[CONTACT][pick])
    return Fast(ok, date[pick], mine, address, contact, texts.strings(which[BODY][pick]))
