"""Where a backup stops being XML, in the words (line, column) of the exact reader's parser.

The fast reader's pull parser skips what it need not read, so its positions are off. The error is
found again by a new parser fed the header, padding to the same line and column (repaired
surrogate references counted as the exact reader's parser counts them), and the file from the
last point where the pull parser was settled.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, cast

import numpy as np

from parsers.kakao.detect import Encoding
from parsers.sms.records import repair
from parsers.sms.source import open_utf8, skip

_BLOCK: Final = 1 << 20


def locate(path: Path, header: bytes, start: int, encoding: Encoding | None = None) -> str | None:
    """The parser's error, read again from `start` behind the header and padding to its place.

    Positions are in the bytes the readers read (a file in another encoding: transcoded).
    """
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start",))
    parser.feed(repair(header))
    line, column = position(path, start, encoding)
    header_line, header_column = _position([header])
    if line > header_line:
        parser.feed(b"\n" * (line - header_line) + b" " * column)
    else:
        parser.feed(b" " * (column - header_column))
    root: ET.Element | None = None
    with open_utf8(path, encoding) as stream:
        skip(stream, start)
        carry = b""
        while True:
            block = stream.read(_BLOCK)
            data = carry + block
            cut = data.rfind(b">") + 1 if block else len(data)
            carry = data[cut:]
            try:
                parser.feed(repair(data[:cut]))
                for _, element in cast(Iterator[tuple[str, ET.Element]], parser.read_events()):
                    root = element if root is None else root
                    root.clear()
                if not block:
                    parser.close()
                    return None
            except ET.ParseError as exc:
                return str(exc)


def position(path: Path, end: int, encoding: Encoding | None = None) -> tuple[int, int]:
    """(line, column) the XML parser gives the byte at `end`: line breaks and characters after repair."""

    def blocks() -> Iterator[bytes]:
        with open_utf8(path, encoding) as stream:
            left = end
            while left > 0 and (block := stream.read(min(_BLOCK, left))):
                left -= len(block)
                yield block

    return _position(blocks())


def _position(blocks: Iterable[bytes]) -> tuple[int, int]:
    line, column, tail, last = 1, 0, b"", b""
    for block in blocks:
        line += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
        line -= last == b"\r" and block.startswith(b"\n")  # a CR LF across two blocks
        last = block[-1:]
        newline = max(block.rfind(b"\n"), block.rfind(b"\r"))
        column, tail = (0, block[newline + 1 :]) if newline >= 0 else (column, tail + block)
        cut = tail.rfind(b">") + 1  # the repair is the same cut after a `>`: count what is before
        column, tail = column + _characters(repair(tail[:cut])), tail[cut:]
    return line, column + _characters(repair(tail))


def _characters(data: bytes) -> int:
    """UTF-8 characters in `data` (bytes that do not continue a character)."""
    return len(data) - int(np.count_nonzero((np.frombuffer(data, np.uint8) & 0xC0) == 0x80))
