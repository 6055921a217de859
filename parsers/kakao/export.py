"""Entry points for one KakaoTalk export file: inspect it, then stream its parsed batches."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from parsers.base import ParseBatch, ParseContext
from parsers.errors import InputError
from parsers.kakao.csv_export import CsvExportParser
from parsers.kakao.detect import SAMPLE_BYTES, Detection, Encoding, detect_encoding, detect_format
from parsers.kakao.formats import CSV_FORMAT_NAME, CSV_SOURCE, FORMATS_BY_NAME
from parsers.kakao.lines import LineExportParser
from parsers.kakao.reader import CHUNK_BYTES, Readable, iter_utf8_chunks

ZIP_MAGIC: Final = b"PK\x03\x04"


@dataclass(frozen=True)
class ExportInfo:
    """What was learnt about an export before parsing it."""

    path: Path
    display_name: str
    size: int
    sha256: str
    encoding: Encoding
    detection: Detection

    @property
    def format_name(self) -> str:
        """The detected variant, e.g. `android_ko` or `mac_csv`."""
        return self.detection.format_name

    @property
    def source(self) -> str:
        """The Message `source` value for this variant."""
        if self.format_name == CSV_FORMAT_NAME:
            return CSV_SOURCE
        return FORMATS_BY_NAME[self.format_name].source

    @property
    def conversation_id(self) -> str:
        """Stable id of the chat room: from its title when the export names it, else from the file."""
        if self.detection.room:
            return "kakao-" + hashlib.sha256(self.detection.room.encode("utf-8")).hexdigest()[:16]
        return "kakao-file-" + self.sha256[:16]


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


def inspect_export(
    path: Path, forced_format: str | None = None, display_name: str | None = None, sha256: str | None = None
) -> ExportInfo:
    """Detect encoding and variant from the head of the file, and hash the whole file."""
    name = display_name or str(path)
    check_readable(path, name)
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    if head.startswith(ZIP_MAGIC):
        raise InputError(name, "is a zip archive; its chat file must be extracted first")
    encoding = detect_encoding(head, name)
    sample = head[len(encoding.bom) :].decode(encoding.name, errors="replace")
    if forced_format is not None and forced_format not in (*FORMATS_BY_NAME, CSV_FORMAT_NAME):
        raise InputError(name, f"unknown format {forced_format!r}")
    detection = detect_format(sample, name, forced_format)
    return ExportInfo(path, name, path.stat().st_size, sha256 or file_sha256(path), encoding, detection)


def iter_batches(
    info: ExportInfo,
    ctx: ParseContext,
    on_progress: Callable[[int], None] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[ParseBatch]:
    """Parse the export in chunks; each batch holds messages and quarantined lines."""
    with info.path.open("rb") as stream:
        if info.format_name == CSV_FORMAT_NAME:
            yield from CsvExportParser(ctx, info.encoding, block_bytes=chunk_bytes).batches(
                _Progress(stream, on_progress)
            )
            return
        parser = LineExportParser(
            FORMATS_BY_NAME[info.format_name], ctx, info.detection.crlf_records, info.encoding.name
        )
        for chunk in iter_utf8_chunks(stream, info.encoding, chunk_bytes, on_progress):
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
