"""KakaoTalk export files: readable checks, hashing, and streaming one detected variant's batches.

Detection across sources and the export's info live in parsers/exports.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from parsers.base import ParseBatch, ParseContext
from parsers.errors import InputError
from parsers.kakao.csv_export import CsvExportParser
from parsers.kakao.detect import Detection, Encoding
from parsers.kakao.formats import CSV_FORMAT_NAME, FORMATS_BY_NAME
from parsers.kakao.lines import LineExportParser
from parsers.kakao.reader import CHUNK_BYTES, Readable, iter_utf8_chunks

ZIP_MAGIC: Final = b"PK\x03\x04"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(4 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def check_readable(path: Path, display_name: str | None = None) -> None:
    """Raise InputError unless `path` is a non-empty regular file we can read."""
    name = display_name or str(path)
    if not path.exists():
        raise InputError(name, "no such file")
    if path.is_dir():
        raise InputError(name, "is a directory, not an export file")
    if not path.is_file():  # opening a FIFO would wait for a writer forever
        raise InputError(
            name, "is not a regular file (a pipe, device or socket); save the export to a file and give that"
        )
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise InputError(name, f"cannot be read ({exc.strerror or exc})") from None
    if path.stat().st_size == 0:
        raise InputError(name, "empty file")


def kakao_batches(
    path: Path,
    detection: Detection,
    encoding: Encoding,
    ctx: ParseContext,
    on_progress: Callable[[int], None] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[ParseBatch]:
    """Parse a KakaoTalk export in chunks; each batch holds messages and quarantined lines."""
    with path.open("rb") as stream:
        if detection.format_name == CSV_FORMAT_NAME:
            yield from CsvExportParser(ctx, encoding, block_bytes=chunk_bytes).batches(
                _Progress(stream, on_progress)
            )
            return
        parser = LineExportParser(
            FORMATS_BY_NAME[detection.format_name], ctx, detection.crlf_records, encoding.name
        )
        for chunk in iter_utf8_chunks(stream, encoding, chunk_bytes, on_progress):
            yield parser.feed(chunk)


class _Progress:
    """A read-only file wrapper that reports bytes read (Arrow's CSV reader pulls from it)."""

    def __init__(self, stream: Readable, on_progress: Callable[[int], None] | None) -> None:
        self._stream = stream
        self._on_progress = on_progress
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if self._on_progress is not None and data:
            self._on_progress(len(data))
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True
