"""Stream a file as UTF-8 chunks that end on a line boundary, whatever its encoding.

Memory stays flat in file size: one chunk (plus one partial line) is held at a time.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from parsers.arrays import is_utf8
from parsers.kakao.detect import Encoding

CHUNK_BYTES: Final = 4 * 1024 * 1024


class Readable(Protocol):
    """The part of a binary file the parsers use."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes; b"" at the end."""
        ...


@dataclass(frozen=True)
class Chunk:
    """UTF-8 bytes of whole lines (the last chunk may end without a newline)."""

    data: bytes
    #: Bytes were undecodable in the file's encoding and were replaced by U+FFFD in this chunk.
    had_decode_errors: bool
    final: bool


def iter_utf8_chunks(
    stream: Readable,
    encoding: Encoding,
    chunk_bytes: int = CHUNK_BYTES,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Chunk]:
    """Yield UTF-8 chunks of whole lines from a binary stream in `encoding`."""
    if encoding.bom:
        stream.read(len(encoding.bom))
    transcoder = None if encoding.name == "utf-8" else _Transcoder(encoding.name)
    carry = b""
    while True:
        raw = stream.read(chunk_bytes)
        final = not raw
        if on_progress is not None and raw:
            on_progress(len(raw))
        if transcoder is None:
            # UTF-8 is validated later in bulk by Arrow; only a failed validation costs a decode.
            data, bad = raw, False
        else:
            data, bad = transcoder.feed(raw, final)
        data = carry + data
        if final:
            yield Chunk(data, bad, final=True)
            return
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        yield Chunk(data[: cut + 1], bad, final=False)


class _Transcoder:
    """Incremental decode to UTF-8; after the first undecodable byte it replaces and says so."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.decoder = codecs.getincrementaldecoder(name)(errors="strict")
        self.replacing = False

    def feed(self, raw: bytes, final: bool) -> tuple[bytes, bool]:
        state = self.decoder.getstate()
        try:
            return self.decoder.decode(raw, final=final).encode("utf-8"), self.replacing
        except UnicodeDecodeError:
            self.decoder = codecs.getincrementaldecoder(self.name)(errors="replace")
            self.decoder.setstate(state)
            self.replacing = True
            return self.decoder.decode(raw, final=final).encode("utf-8"), True


def valid_utf8(chunk: Chunk) -> tuple[bytes, bool]:
    """The chunk's bytes as valid UTF-8 (undecodable bytes replaced) and whether any were."""
    data = chunk.data
    if not data:
        return data, chunk.had_decode_errors
    if not is_utf8(data):
        return data.decode("utf-8", errors="replace").encode("utf-8"), True
    return data, chunk.had_decode_errors
