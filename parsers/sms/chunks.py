"""A backup's bytes cut into chunks of whole segments, and the bytes the scan looks at in them.

A segment starts at a `<` and runs to the next one: one tag and the text after it. Comments, CDATA
sections and processing instructions may hold `<` and stay whole in one segment; a chunk ends
before one not closed by the end of what has been read. The file is read straight into one
buffer reused from chunk to chunk (fresh memory costs a page fault a page).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BufferedIOBase
from typing import Final

import numpy as np

#: Bytes before a chunk's bytes (zeros: keys end near its start) and after them (reads ahead).
FRONT: Final = 16
BACK: Final = 64
_LT, _QUOTE, _AMP, _BANG, _QUESTION = 60, 34, 38, 33, 63
#: Constructs whose content may hold `<`: opener and terminator.
_CONSTRUCTS: Final = ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>"))


@dataclass
class Chunk:
    """Whole segments: padded bytes, each segment's [start, end), where the special bytes are.

    `offset` is where the chunk starts in the file; its bytes last until the next chunk is read.
    """

    offset: int
    size: int
    buf: np.ndarray = field(repr=False)  # uint8: FRONT bytes, `size` bytes, at least BACK bytes
    starts: np.ndarray
    ends: np.ndarray
    quotes: np.ndarray  # positions of `"`
    amps: np.ndarray  # of `&`
    controls: np.ndarray  # of bytes below 0x20
    ef: np.ndarray  # of 0xEF (U+FFFE and U+FFFF open with it)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def body(self) -> np.ndarray:
        """The chunk's bytes (a view)."""
        return self.buf[FRONT : FRONT + self.size]

    def bytes(self, start: int, end: int) -> bytes:
        """The bytes [start, end) of the chunk."""
        return self.buf[FRONT + start : FRONT + end].tobytes()


class Reader:
    """A file read in blocks into one buffer, handed out as chunks of whole segments."""

    def __init__(
        self,
        stream: BufferedIOBase,
        head: bytes,
        offset: int,
        block: int,
        on_progress: Callable[[int], None] | None,
    ) -> None:
        """Read `stream` after `head` (already read, at file `offset`), `block` bytes at a time."""
        self.stream, self.block, self.on_progress = stream, block, on_progress
        self.offset, self.filled = offset, 0  # file offset of the buffer's data, its size
        self.raw = bytearray()
        self._room(len(head) + block)
        self.raw[FRONT : FRONT + len(head)] = head
        self.filled = len(head)

    def chunks(self) -> Iterator[Chunk]:
        """The chunks, to the end of the file (the last one takes whatever is left)."""
        final = False
        while not final:
            final = self._read()
            chunk = self._split(final)
            if chunk.size:
                yield chunk
            self._drop(chunk.size)

    def _room(self, size: int) -> None:
        """A buffer for `size` bytes of data (what it holds kept)."""
        if len(self.raw) >= FRONT + size + BACK:
            return
        raw = bytearray(FRONT + 2 * size + BACK)
        if self.filled:
            raw[FRONT : FRONT + self.filled] = self.raw[FRONT : FRONT + self.filled]
        self.raw, self.buf = raw, np.frombuffer(raw, np.uint8)
        self.flags, self.more = np.zeros(len(raw), bool), np.zeros(len(raw), bool)

    def _read(self) -> bool:
        """One block more; whether the file has ended."""
        self._room(self.filled + self.block)
        start = FRONT + self.filled
        count = self.stream.readinto(memoryview(self.raw)[start : start + self.block])
        if count and self.on_progress is not None:
            self.on_progress(count)
        self.filled += count or 0
        self.buf[FRONT + self.filled : FRONT + self.filled + BACK] = 0
        return not count

    def _drop(self, size: int) -> None:
        """Forget the first `size` bytes of data (the rest moves to the front)."""
        rest = self.filled - size
        self.raw[FRONT : FRONT + rest] = self.raw[FRONT + size : FRONT + self.filled]
        self.offset, self.filled = self.offset + size, rest

    def _split(self, final: bool) -> Chunk:
        """The whole segments of the data, as a chunk.

        It ends at the last `<` (at the end when `final`), or before a construct still open there.
        The first segment is text when the data does not open with `<`.
        """
        size = self.filled if final else max(self.raw.rfind(b"<", FRONT, FRONT + self.filled) - FRONT, 0)
        body = self.buf[FRONT : FRONT + size]
        quotes = np.flatnonzero(np.equal(body, _QUOTE, out=self.flags[:size]))  # the most special bytes
        special = np.flatnonzero(_special(body, self.flags[:size], self.more[:size]))
        kinds = body[special]
        starts = special[kinds == _LT]
        following = self.buf[starts + FRONT + 1]
        openers = starts[(following == _BANG) | (following == _QUESTION)]
        if len(openers):
            data = bytes(self.raw[FRONT : FRONT + self.filled])
            starts, size = _outside_constructs(data, starts, openers, size, final)
            kinds = kinds[special < size]
            special, quotes = special[: len(kinds)], quotes[quotes < size]
        if size and (not len(starts) or starts[0] != 0):
            starts = np.concatenate([[0], starts])
        starts = starts.astype(np.int64)
        ends = np.append(starts[1:], size).astype(np.int64)
        amps, controls = special[kinds == _AMP], special[kinds < 32]
        found = self.raw.find(b"\xef", FRONT, FRONT + size) >= 0  # rare in text
        ef = np.flatnonzero(body[:size] == 0xEF) if found else special[:0]
        return Chunk(self.offset, size, self.buf, starts, ends, quotes, amps, controls, ef)


def _special(body: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Which bytes are `&`, `<` or below 0x20 (into `out`)."""
    np.less(body, 32, out=out)
    for byte in (_AMP, _LT):
        np.logical_or(out, np.equal(body, byte, out=scratch), out=out)
    return out


def _outside_constructs(
    data: bytes, starts: np.ndarray, openers: np.ndarray, size: int, final: bool
) -> tuple[np.ndarray, int]:
    """The `<` positions outside constructs, and the size cut before one left open at the end."""
    inside = np.zeros(len(starts), bool)
    for start, end in construct_spans(data, openers):
        if not final and (end < 0 or end > size):
            size = start
            break
        inside |= (starts > start) & (starts < (size if end < 0 else end))
    keep = ~inside & (starts < size)
    return starts[keep], size


def construct_spans(data: bytes, starts: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the comments, CDATA sections and PIs opening at `starts` (`<!` or `<?`).

    `end` is -1 when the terminator is not in `data`; one inside an earlier construct is none.
    """
    spans: list[tuple[int, int]] = []
    after = 0
    for start in starts.tolist():
        if start < after:
            continue
        for opener, terminator in _CONSTRUCTS:
            if data.startswith(opener, start):
                found = data.find(terminator, start + len(opener))
                end = found + len(terminator) if found >= 0 else -1
                spans.append((start, end))
                after = end if end >= 0 else len(data)
                break
    return spans
