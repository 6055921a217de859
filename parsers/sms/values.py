"""Attribute values of a chunk's plain elements, cut out of its bytes with numpy and Arrow.

A value is a byte range [open + 1, close) between a pair of double quotes. Long values (bodies)
become an Arrow string column through string views over the chunk; short ones that repeat
(numbers, contact names) become codes into their distinct texts, each decoded once in Python;
dates are read as numbers eight digits at a time. References (`&amp;`, `&#55357;&#56832;`, ...)
are decoded with parsers/sms/refs.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa

from parsers.sms.chunks import FRONT, Chunk
from parsers.sms.keys import KEY, distinct
from parsers.sms.refs import WIDTH, Refs, decode, sixteen

_ODD: Final = 0xFF  # the length byte of a value not keyed (too long, or with references)
_INLINE: Final = 12  # Arrow string views hold strings up to 12 bytes inline
#: Most digits read as a number (a date in milliseconds has 13).
DIGITS: Final = 16
_BYTES: Final = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], np.uint64)  # low k bytes
_ZEROS, _SIXES, _HIGH_NIBBLES = 0x3030303030303030, 0x0606060606060606, 0xF0F0F0F0F0F0F0F0


def _key_masks(left: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per key length: masks of the two words of a key (its bytes right- or left-aligned)."""
    masks = np.zeros((2, KEY), np.uint64)
    for length in range(KEY):
        kept = range(1, 1 + length) if left else range(KEY - length, KEY)
        every = sum(0xFF << (8 * j) for j in kept)
        masks[0, length], masks[1, length] = every & (2**64 - 1), every >> 64
    return masks[0], masks[1]


_RIGHT, _LEFT = _key_masks(left=False), _key_masks(left=True)
_DIGIT_MASKS = tuple(np.append(masks, np.uint64(2**64 - 1)) for masks in _RIGHT)  # lengths 0 to 16


def keys_before(buf: np.ndarray, end: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Keys of the `length` (< KEY) bytes before each `end`: the length, the bytes right-aligned."""
    keys = sixteen(buf, end + FRONT - KEY)
    keys[:, 0] = (keys[:, 0] & _RIGHT[0][length]) | length.astype(np.uint64)
    keys[:, 1] &= _RIGHT[1][length]
    return keys.view(np.uint8)


def keys_after(buf: np.ndarray, begin: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Keys of the `length` (< KEY) bytes from each `begin`: the length, then those bytes."""
    keys = sixteen(buf, begin + FRONT - 1)
    keys[:, 0] = (keys[:, 0] & _LEFT[0][length]) | length.astype(np.uint64)
    keys[:, 1] &= _LEFT[1][length]
    return keys.view(np.uint8)


@dataclass
class Values:
    """The attribute values of the candidate segments, in order: [open + 1, close)."""

    opens: np.ndarray
    closes: np.ndarray
    segment: np.ndarray
    heads: np.ndarray  # the first value of each candidate segment
    sizes: np.ndarray  # how many values each has
    bounds: np.ndarray  # open + 1 and close of each value, in turn

    def span(self, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[begin, end) of each value (empty where there is none: -1)."""
        present = value >= 0
        return np.where(present, self.opens[value] + 1, 0), np.where(present, self.closes[value], 0)


def pair(quotes: np.ndarray, segments: np.ndarray, per_segment: np.ndarray) -> Values:
    """The values of `segments`, which hold `per_segment` pairs of the sorted `quotes` each."""
    heads = (np.cumsum(per_segment) - per_segment).astype(np.int64)
    bounds = quotes.copy()
    bounds[0::2] += 1
    return Values(
        bounds[0::2] - 1, quotes[1::2], np.repeat(segments, per_segment), heads, per_segment, bounds
    )


@dataclass
class Amps:
    """The `&` inside values: where, in which value, what reference."""

    at: np.ndarray
    value: np.ndarray
    refs: Refs


@dataclass
class Coded:
    """Short texts as codes into their distinct values."""

    codes: np.ndarray
    values: list[str]

    def slice(self, start: int, stop: int) -> Coded:
        """Rows [start, stop)."""
        return Coded(self.codes[start:stop], self.values)


class Texts:
    """Values of a chunk as text, references decoded."""

    def __init__(self, chunk: Chunk, values: Values, amps: Amps) -> None:
        """Read from `chunk`, whose `values` hold the references `amps`."""
        self.chunk, self.values, self.amps = chunk, values, amps
        self.with_ref = np.zeros(len(values.opens) + 1, bool)  # the last one: no value
        self.with_ref[amps.value] = True

    def strings(self, value: np.ndarray) -> pa.Array:
        """Each value (-1: none, the empty string) as a string column."""
        begin, end = self.values.span(value)
        views = _views(self.chunk.buf, begin + FRONT, end - begin, 0)
        with_ref = np.flatnonzero(self.with_ref[value])
        if not len(with_ref):
            return _column(views, [self.chunk.buf])
        rows = np.full(len(self.values.opens) + 1, -1, np.int64)
        rows[value[with_ref]] = np.arange(len(with_ref))
        held = np.flatnonzero(rows[self.amps.value] >= 0)
        row = rows[self.amps.value[held]]
        text = _column(views[with_ref], [self.chunk.buf])  # those rows, one after the other
        offsets = np.frombuffer(text.buffers()[1], np.int32, len(text) + 1).astype(np.int64)
        data = np.zeros(int(offsets[-1]) + WIDTH, np.uint8)
        data[: offsets[-1]] = np.frombuffer(text.buffers()[2], np.uint8, int(offsets[-1]))
        at = self.amps.at[held] - begin[with_ref][row]
        decoded, offsets = decode(data, offsets, row, at, self.amps.refs.take(held))
        padded = np.zeros(len(decoded) + WIDTH, np.uint8)
        padded[: len(decoded)] = decoded
        views[with_ref] = _views(padded, offsets[:-1], np.diff(offsets), 1)
        return _column(views, [self.chunk.buf, padded])

    def coded(self, value: np.ndarray) -> Coded:
        """Each value (-1: none, the empty string) as a code: short plain ones by their bytes."""
        begin, end = self.values.span(value)
        length = end - begin
        plain = (length < KEY) & ~self.with_ref[value]
        keys = keys_after(self.chunk.buf, begin, np.where(plain, length, 0))
        keys[~plain, 0] = _ODD
        codes, uniques = distinct(keys)
        texts = [key[1 : 1 + key[0]].decode() if key[0] != _ODD else "" for key in uniques]
        odd = np.flatnonzero(~plain)
        if len(odd):
            index = {text: i for i, text in enumerate(texts) if uniques[i][0] != _ODD}
            for row, text in zip(odd.tolist(), self.strings(value[odd]).to_pylist(), strict=True):
                codes[row] = index.setdefault(text, len(texts))
                texts += [text] if codes[row] == len(texts) else []
        return Coded(codes, texts)


def _views(buf: np.ndarray, at: np.ndarray, length: np.ndarray, index: int) -> np.ndarray:
    """Arrow string views of `length` bytes at `at` of `buf` (Arrow's buffer `index`): two words each.

    The length and the first 4 bytes, then the next 8 bytes (a string of up to 12 bytes) or the
    buffer's index and the offset.
    """
    views = sixteen(buf, at)
    inline = (views[:, 0] >> np.uint64(32)) | (views[:, 1] << np.uint64(32))  # bytes 4 to 11
    views[:, 0] = length.astype(np.uint64) | ((views[:, 0] & _BYTES[np.minimum(length, 4)]) << np.uint64(32))
    where = (at.astype(np.uint64) << np.uint64(32)) | np.uint64(index)
    views[:, 1] = np.where(length > _INLINE, where, inline & _BYTES[np.clip(length - 4, 0, 8)])
    return views


def _column(views: np.ndarray, buffers: list[np.ndarray]) -> pa.Array:
    """The strings of the views, copied into a plain column.

    As binary viewed as strings: the chunk's UTF-8 is checked once, whole.
    """
    parts = [None, pa.py_buffer(np.ascontiguousarray(views)), *(pa.py_buffer(b) for b in buffers)]
    return pa.Array.from_buffers(pa.binary_view(), len(views), parts).cast(pa.binary()).view(pa.string())


def numbers(buf: np.ndarray, begin: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each [begin, end) as a number, and whether it is 1 to DIGITS ASCII digits (`int` agrees).

    The last 16 bytes up to `end`, the ones before `begin` taken as zeros: eight digits a word.
    """
    length = end - begin
    plain = (length >= 1) & (length <= DIGITS)
    both = sixteen(buf, end + FRONT - DIGITS)
    kept = np.minimum(length, DIGITS)
    for word, mask in ((both[:, 0], _DIGIT_MASKS[0][kept]), (both[:, 1], _DIGIT_MASKS[1][kept])):
        word[:] = ((word & mask) | (np.uint64(_ZEROS) & ~mask)) ^ np.uint64(_ZEROS)  # digits 0 to 9
        nibbles = np.uint64(_HIGH_NIBBLES)
        plain &= ((word & nibbles) == 0) & (((word + np.uint64(_SIXES)) & nibbles) == 0)
    value = _eight(both[:, 0]).astype(np.int64) * 100_000_000 + _eight(both[:, 1]).astype(np.int64)
    return np.where(plain, value, 0), plain


def _eight(word: np.ndarray) -> np.ndarray:
    """The number of each word's 8 digits (0 to 9 a byte, the first in the lowest byte)."""
    word = ((word & np.uint64(0x0F0F0F0F0F0F0F0F)) * np.uint64(2561)) >> np.uint64(8)
    word = ((word & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601)) >> np.uint64(16)
    return ((word & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)
