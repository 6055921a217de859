"""A backup's bytes as both readers read them: UTF-8, whatever encoding the file was saved in.

SMS Backup & Restore writes UTF-8. A backup saved again by an editor (UTF-16, EUC-KR, Windows-1252)
mostly keeps its declaration saying UTF-8, and the XML parser, reading it as the declaration says,
fails on the first byte that is not. The encoding detected from the file's content
(`parsers.exports.inspect_export`, `info.encoding`) is trusted instead: such a file is transcoded
to UTF-8 as it is read, a block at a time (memory stays flat), bytes undecodable in that encoding
replaced by U+FFFD (as the line-based readers replace them), and its declaration's encoding said as
UTF-8, so that the parser reads what it is given. A UTF-8 file (or an unknown encoding: None) is
read as it is, byte for byte.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from parsers.kakao.detect import Encoding

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: File bytes decoded at a time.
_BLOCK: Final = 1 << 20
#: Text held back until the XML declaration is whole (it opens the file and is short).
_HEAD: Final = 4096
#: The XML declaration's encoding (the value: group 3).
_DECLARATION: Final = re.compile(
    r"""(\ufeff?<\?xml[ \t\r\n][^<>?]*?[ \t\r\n]encoding[ \t\r\n]*=[ \t\r\n]*)(["'])([^"'<>?]*)\2"""
)


def transcodes(encoding: Encoding | None) -> bool:
    """Whether a file in `encoding` is transcoded (anything but UTF-8)."""
    return encoding is not None and encoding.name.replace("_", "-").lower() not in ("utf-8", "utf8")


def open_utf8(path: Path, encoding: Encoding | None = None) -> io.BufferedReader:
    """The file as UTF-8 bytes: itself when it is UTF-8 (or `encoding` is None), else transcoded."""
    if not transcodes(encoding):
        return path.open("rb")
    assert encoding is not None
    return io.BufferedReader(_Transcoded(path, encoding), _BLOCK)


def progress(
    stream: io.BufferedReader, on_progress: Callable[[int], None] | None
) -> Callable[[int], None] | None:
    """What a reader calls with the count of bytes it read from `stream`, to report the file's bytes.

    A transcoded stream's bytes are not the file's: the file's bytes read since the last call are
    reported instead (at the first call, all read so far).
    """
    raw = getattr(stream, "raw", None)
    if on_progress is None or not isinstance(raw, _Transcoded):
        return on_progress
    reported = 0

    def report(_: int) -> None:
        nonlocal reported
        if raw.consumed > reported:
            on_progress(raw.consumed - reported)
            reported = raw.consumed

    return report


def skip(stream: io.BufferedReader, count: int) -> None:
    """Move `count` bytes on from the start of a stream just opened (read through where it cannot seek)."""
    if stream.seekable():
        stream.seek(count)
        return
    while count > 0 and (block := stream.read(min(_BLOCK, count))):
        count -= len(block)


def neutral(head: str) -> str:
    """The head of a file with its XML declaration's encoding said as UTF-8 (it is about to be)."""
    match = _DECLARATION.match(head)
    if match is None or match[3].lower() in ("utf-8", "utf8"):
        return head
    return f"{match[1]}{match[2]}UTF-8{match[2]}{head[match.end() :]}"


class _Transcoded(io.RawIOBase):
    """A file in another encoding read as UTF-8 bytes (its declaration neutralised: `neutral`)."""

    def __init__(self, path: Path, encoding: Encoding) -> None:
        self._file = path.open("rb")
        self.consumed = len(self._file.read(len(encoding.bom)))  # the file's bytes read so far
        self._decoder = codecs.getincrementaldecoder(encoding.name)(errors="replace")
        self._out, self._at = b"", 0  # transcoded bytes not yet handed out: self._out[self._at:]
        self._head: str | None = ""  # text held until the declaration is whole (None: passed)
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while self._at >= len(self._out) and not self._ended:
            self._fill()
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._out) - self._at)
        view[:count] = self._out[self._at : self._at + count]
        self._at += count
        return count

    def close(self) -> None:
        file = getattr(self, "_file", None)  # absent: the file did not open
        if file is not None:
            file.close()
        super().close()

    def _fill(self) -> None:
        raw = self._file.read(_BLOCK)
        self.consumed += len(raw)
        self._ended = not raw
        text = self._decoder.decode(raw, final=self._ended)
        if self._head is not None:
            self._head += text
            if not self._ended and len(self._head) < _HEAD and "?>" not in self._head:
                return
            text, self._head = neutral(self._head), None
        self._out, self._at = text.encode("utf-8", errors="replace"), 0
