"""Byte-level, vectorised scanning of line-based exports with numpy.

Every line of a chunk is scanned at once: a cursor array moves through a small grammar of
tokens (literal bytes, digit runs, alternatives) that describes a variant's timestamp, so a
million lines cost a few dozen numpy passes instead of a million regex calls. Strings are cut out
of the chunk's buffer by byte ranges through Arrow string views, without Python objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

_INLINE: Final = 12  # Arrow string views hold strings up to 12 bytes inline
_PAD: Final = 64  # zero bytes after the buffer so that look-ahead never reads past it


@dataclass(frozen=True)
class Tok:
    """One token of a timestamp grammar.

    `lit`: the bytes of `text` must follow. `num`: `lo`..`hi` ASCII digits, stored as `name`.
    `alt`: the first of `options` (text, value) that follows, stored as `name` (0 when optional
    and absent; `name` empty means match but do not store).
    """

    op: str
    name: str = ""
    text: str = ""
    lo: int = 1
    hi: int = 1
    options: tuple[tuple[str, int], ...] = ()
    optional: bool = False


def lit(text: str) -> Tok:
    """Literal text."""
    return Tok("lit", text=text)


def num(name: str, lo: int, hi: int) -> Tok:
    """A run of `lo`..`hi` digits."""
    return Tok("num", name=name, lo=lo, hi=hi)


def alt(name: str, options: tuple[tuple[str, int], ...], optional: bool = False) -> Tok:
    """The first matching option; list longer options before their prefixes."""
    return Tok("alt", name=name, options=options, optional=optional)


def to_regex(grammar: tuple[Tok, ...]) -> str:
    """The grammar as a regular expression (RE2 and Python `re`), named tokens as named groups."""

    def escape(text: str) -> str:
        return re.escape(text).replace("\\ ", " ")

    parts = []
    for tok in grammar:
        if tok.op == "lit":
            parts.append(escape(tok.text))
        elif tok.op == "num":
            parts.append(f"(?P<{tok.name}>[0-9]{{{tok.lo},{tok.hi}}})")
        else:
            options = "|".join(escape(text) for text, _ in tok.options)
            group = f"(?P<{tok.name}>{options})" if tok.name else f"(?:{options})"
            parts.append(f"{group}?" if tok.optional else group)
    return "".join(parts)


@dataclass
class Lines:
    """A chunk's lines as byte ranges over one buffer: [start, end) without the CR/LF."""

    buf: np.ndarray  # uint8, padded with _PAD zero bytes
    raw: pa.Buffer  # the chunk's bytes, unpadded (shared by the string views)
    start: np.ndarray  # int64
    end: np.ndarray  # int64, content end (a trailing CR excluded)
    cr: np.ndarray  # bool: the line ended in CRLF

    def __len__(self) -> int:
        return len(self.start)

    @cached_property
    def windows(self) -> np.ndarray:
        """Every 12-byte window of the buffer (a view, no copy)."""
        return sliding_window_view(self.buf, _INLINE)

    @property
    def size(self) -> int:
        """Bytes in the chunk (without the padding)."""
        return len(self.buf) - _PAD

    def strings(self, index: np.ndarray | None = None) -> pa.Array:
        """The lines (all, or those at `index`) as an Arrow string array."""
        if index is None:
            return slice_strings(self, self.start, self.end)
        return slice_strings(self, self.start[index], self.end[index])


def split_lines(data: bytes) -> Lines:
    """Split UTF-8 bytes on LF; the last line may lack its terminator."""
    raw = pa.py_buffer(data)
    buf = np.zeros(len(data) + _PAD, dtype=np.uint8)
    buf[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf[: len(data)] == 10)
    ends = newlines
    if len(data) and data[-1:] != b"\n":
        ends = np.append(newlines, len(data))
    starts = np.empty(len(ends), dtype=np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    ends = ends.astype(np.int64)
    cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    return Lines(buf, raw, starts, ends - cr, cr)


def scan(
    buf: np.ndarray, cursor: np.ndarray, end: np.ndarray, grammar: tuple[Tok, ...]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Run a grammar from each `cursor` (bounded by `end`).

    Returns (valid, cursor, fields): whether the grammar matched, the byte position after it,
    and the value of every named token.
    """
    cursor = cursor.copy()
    valid = np.ones(len(cursor), dtype=bool)
    fields: dict[str, np.ndarray] = {}
    for tok in grammar:
        if tok.op == "lit":
            encoded = tok.text.encode("utf-8")
            valid &= _follows(buf, cursor, end, encoded)
            cursor = cursor + len(encoded)
        elif tok.op == "num":
            value = np.zeros(len(cursor), dtype=np.int64)
            count = np.zeros(len(cursor), dtype=np.int64)
            for j in range(tok.hi):
                digit = buf[cursor + j].astype(np.int64) - 48
                more = (count == j) & (digit >= 0) & (digit <= 9) & (cursor + j < end)
                value = np.where(more, value * 10 + digit, value)
                count += more
            valid &= count >= tok.lo
            cursor = cursor + count
            fields[tok.name] = value
        else:
            value = np.zeros(len(cursor), dtype=np.int64)
            taken = np.zeros(len(cursor), dtype=bool)
            step = np.zeros(len(cursor), dtype=np.int64)
            for text, option_value in tok.options:
                encoded = text.encode("utf-8")
                hit = ~taken & _follows(buf, cursor, end, encoded)
                value[hit] = option_value
                step[hit] = len(encoded)
                taken |= hit
            if not tok.optional:
                valid &= taken
            cursor = cursor + step
            if tok.name:
                fields[tok.name] = value
        # Rejected lines keep a cursor inside their own bytes, so look-ahead stays bounded.
        cursor = np.minimum(cursor, end)
    return valid, cursor, fields


def _follows(buf: np.ndarray, cursor: np.ndarray, end: np.ndarray, encoded: bytes) -> np.ndarray:
    ok = cursor + len(encoded) <= end
    for j, byte in enumerate(encoded):
        ok &= buf[cursor + j] == byte
    return ok


def first_codepoints(lines: Lines, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The first code point of each byte range [a, b) (UTF-8 decoded), -1 for an empty range."""
    buf = lines.buf
    b0 = buf[a].astype(np.int64)
    b1 = buf[a + 1].astype(np.int64) & 0x3F
    b2 = buf[a + 2].astype(np.int64) & 0x3F
    b3 = buf[a + 3].astype(np.int64) & 0x3F
    cp = np.where(
        b0 < 0x80,
        b0,
        np.where(
            b0 < 0xE0,
            ((b0 & 0x1F) << 6) | b1,
            np.where(
                b0 < 0xF0,
                ((b0 & 0x0F) << 12) | (b1 << 6) | b2,
                ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3,
            ),
        ),
    )
    return np.where(b > a, cp, -1)


def occurrences(lines: Lines, pattern: bytes) -> np.ndarray:
    """Sorted byte positions where `pattern` (2 bytes or more) starts anywhere in the buffer."""
    size = lines.size
    if size < len(pattern):
        return np.zeros(0, dtype=np.int64)
    buf = lines.buf
    # Compare the first two bytes as one uint16 at both alignments: half the passes of bytes.
    pair = int.from_bytes(pattern[:2], "little")
    even = np.flatnonzero(buf[: size - size % 2].view("<u2") == pair) * 2
    odd = np.flatnonzero(buf[1 : 1 + (size - 1) - (size - 1) % 2].view("<u2") == pair) * 2 + 1
    found = np.sort(np.concatenate([even, odd]))
    found = found[found + len(pattern) <= size]
    for j, byte in enumerate(pattern[2:], start=2):
        found = found[buf[found + j] == byte]
    return found


def first_at_or_after(positions: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each [lo, hi), the first position in it, or -1."""
    if len(positions) == 0:
        return np.full(len(lo), -1, dtype=np.int64)
    k = np.searchsorted(positions, lo)
    found = positions[np.minimum(k, len(positions) - 1)]
    return np.where((k < len(positions)) & (found < hi), found, -1)


_VIEW = np.dtype([("length", "<i4"), ("inline", "u1", (_INLINE,))])


def slice_strings(lines: Lines, a: np.ndarray, b: np.ndarray) -> pa.Array:
    """Arrow strings for byte ranges [a, b) of the buffer (a valid UTF-8 cut is the caller's care).

    Builds Arrow string views over the chunk's own buffer (short strings inline, long ones as
    prefix + offset), then lets Arrow copy them into a plain string column.
    """
    n = len(a)
    if n == 0:
        return pa.array([], pa.string())
    lengths = (b - a).astype(np.int32)
    inline = lines.windows[a]  # the first 12 bytes of every string, copied out in one gather
    inline[np.arange(_INLINE)[None, :] >= lengths[:, None]] = 0
    long = np.flatnonzero(lengths > _INLINE)
    inline[long, 4:8] = 0  # buffer index
    inline[long, 8:12] = a[long].astype("<i4").view(np.uint8).reshape(-1, 4)
    views = np.empty(n, dtype=_VIEW)
    views["length"] = lengths
    views["inline"] = inline
    array = pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views), lines.raw])
    return array.cast(pa.string())
