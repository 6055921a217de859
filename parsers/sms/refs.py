"""XML references in attribute values, read with numpy: `&amp;`-style entities and `&#...;` numbers.

A reference is valid where the exact path accepts it: one of the five predefined entities, or a
decimal or (lower-case `x`) hexadecimal character number of a character XML allows, or a 5-digit
decimal surrogate half, which `records.repair` joins with the low half right after it (else
U+FFFD) before the XML parser sees it. Every reference turns into its UTF-8 bytes, which never
take more room than the reference, so text is decoded in place and compacted once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np

from parsers.sms.keys import KeyTable

#: Bytes read from an `&`: the longest reference the fast path takes (`&#x10FFFF;` is 10).
WIDTH: Final = 16
_REFERENCE: Final = re.compile(rb"&(?:(amp|lt|gt|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));")
_NAMED: Final = {b"amp": 38, b"lt": 60, b"gt": 62, b"quot": 34, b"apos": 39}
_ONES, _HIGHS, _SEMIS = 0x0101010101010101, 0x8080808080808080, 0x3B3B3B3B3B3B3B3B
_MASKS: Final = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], np.uint64)


def sixteen(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The 16 bytes of `buf` from each position, as two little-endian words (n, 2): one gather."""
    every = np.ndarray(shape=(max(len(buf) - 15, 0),), dtype="V16", buffer=buf, strides=(1,))
    pairs: np.ndarray = every[at].view("<u8").reshape(-1, 2)
    return pairs


def _first_semicolon(word: np.ndarray) -> np.ndarray:
    """Index of the first `;` byte of each little-endian word, 8 where there is none."""
    y = word ^ np.uint64(_SEMIS)
    zero = (y - np.uint64(_ONES)) & ~y & np.uint64(_HIGHS)  # exact for the lowest zero byte
    lowest = zero & (~zero + np.uint64(1))
    return np.where(zero == 0, 8, np.bitwise_count(lowest - np.uint64(1)) // 8).astype(np.int64)


def _one(reference: bytes) -> tuple[int, int, bool, bool]:
    """(length, value, valid, half) of one candidate reference (up to its first `;`)."""
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        return 0, 0, False, False
    if match[1] is not None:
        return len(reference), _NAMED[match[1]], True, False
    value = int(match[2]) if match[2] is not None else int(match[3], 16)
    half = match[2] is not None and len(match[2]) == 5 and 0xD800 <= value <= 0xDFFF
    char = value in (9, 10, 13) or 0x20 <= value <= 0xD7FF or 0xE000 <= value <= 0xFFFD
    return (
        len(reference),
        value if value <= 0x10FFFF else 0,
        half or char or 0x10000 <= value <= 0x10FFFF,
        half,
    )


@dataclass(frozen=True)
class Refs:
    """What each of some `&` starts: length in bytes, character number, validity, surrogate half.

    A half is a 5-digit decimal reference to a surrogate half: valid, as the repair pairs it or
    replaces it.
    """

    length: np.ndarray
    value: np.ndarray
    valid: np.ndarray
    half: np.ndarray

    def take(self, index: np.ndarray) -> Refs:
        """Those at `index`."""
        return Refs(self.length[index], self.value[index], self.valid[index], self.half[index])


class RefReader:
    """Reads the references of a file: each distinct one once, in Python, then from a table."""

    def __init__(self) -> None:
        """No reference read yet."""
        self.read: list[tuple[int, int, bool, bool]] = []
        self.table = KeyTable(self._classify, bits=14)
        self.columns = np.zeros((0, 4), np.int64)

    def __call__(self, buf: np.ndarray, amps: np.ndarray) -> Refs:
        """Each `&` at `amps` of `buf` (padded with WIDTH bytes)."""
        keys = sixteen(buf, amps)  # cut after the first `;`
        low, high = keys[:, 0], keys[:, 1]
        at_low, at_high = _first_semicolon(low), _first_semicolon(high)
        size = np.where(at_low < 8, at_low + 1, np.where(at_high < 8, 9 + at_high, 0))
        low &= _MASKS[np.minimum(size, 8)]
        high &= _MASKS[np.clip(size - 8, 0, 8)]
        index = self.table.lookup(keys.view(np.uint8))
        if len(self.columns) < len(self.read):
            self.columns = np.array(self.read, np.int64).reshape(-1, 4)
        length, value, valid, half = self.columns[index].T
        return Refs(length, value, valid.astype(bool), half.astype(bool))

    def _classify(self, key: bytes) -> int:
        self.read.append(_one(key.rstrip(b"\0")))
        return len(self.read) - 1


def join_halves(
    amps: np.ndarray, length: np.ndarray, value: np.ndarray, half: np.ndarray, row: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What each reference becomes, as `export.repair` and the parser make it: (code, span, emit).

    A high half followed at once (in the same value) by a low half is one character spanning both;
    any other half is U+FFFD; `emit` is False for a low half taken by the high half before it.
    """
    code, span = value.copy(), length.copy()
    high, low = half & (value <= 0xDBFF), half & (value >= 0xDC00)
    pair = np.zeros(len(amps), bool)
    if len(amps) > 1:
        pair[:-1] = high[:-1] & low[1:] & (amps[1:] == amps[:-1] + length[:-1]) & (row[1:] == row[:-1])
    taken = np.zeros(len(amps), bool)
    taken[1:] = pair[:-1]
    joined = np.flatnonzero(pair)
    code[joined] = 0x10000 + ((value[joined] - 0xD800) << 10) + (value[joined + 1] - 0xDC00)
    span[joined] += length[joined + 1]
    code[half & ~pair & ~taken] = 0xFFFD
    return code, span, ~taken


def _utf8(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 of code points: (n, 4) bytes and how many of them each uses."""
    size = 1 + (code >= 0x80) + (code >= 0x800) + (code >= 0x10000)
    lead = np.select(
        [size == 1, size == 2, size == 3],
        [code, 0xC0 | (code >> 6), 0xE0 | (code >> 12)],
        0xF0 | (code >> 18),
    )
    out = np.zeros((len(code), 4), np.uint8)
    out[:, 0] = lead & 0xFF
    for k in range(1, 4):
        shift = np.maximum(6 * (size - 1 - k), 0)
        out[:, k] = np.where(size > k, 0x80 | ((code >> shift) & 0x3F), 0)
    return out, size


def decode(
    data: np.ndarray, offsets: np.ndarray, row: np.ndarray, at: np.ndarray, refs: Refs
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of text with their references decoded in place: the new bytes and offsets.

    Row i is `data[offsets[i]:offsets[i+1]]` (`data` padded with WIDTH bytes); reference j (all
    valid, in order) is `refs[j]` at byte `at[j]` of row `row[j]`.
    """
    size = int(offsets[-1])
    amps = offsets[row] + at
    code, span, emit = join_halves(amps, refs.length, refs.value, refs.half, row)
    amps, code, span = amps[emit], code[emit], span[emit]
    encoded, used = _utf8(code)
    for k in range(4):
        written = np.flatnonzero(used > k)
        data[amps[written] + k] = encoded[written, k]
    cuts = np.empty(2 * len(amps) + 2, np.int64)  # kept and dropped runs alternate
    cuts[0], cuts[1:-1:2], cuts[2:-1:2], cuts[-1] = 0, amps + used, amps + span, size
    keep = np.repeat(np.arange(len(cuts) - 1) % 2 == 0, np.diff(cuts))
    dropped = np.bincount(row[emit], weights=span - used, minlength=len(offsets) - 1).astype(np.int64)
    new_offsets = np.concatenate([[0], np.cumsum(np.diff(offsets) - dropped)])
    return data[:size][keep], new_offsets
