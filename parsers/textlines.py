"""Line-based exports read as chunks of whole lines, for the vectorised parsers (WhatsApp, LINE).

A parser sees a file as UTF-8 chunks of a few MB that end on a line boundary (any encoding is
transcoded, undecodable bytes replaced) and scans each chunk's lines at once with Arrow kernels;
a message still open at a chunk's end is carried into the next. Memory stays flat in file size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.errors import InputError
from parsers.kakao.detect import Encoding
from parsers.kakao.reader import CHUNK_BYTES, iter_utf8_chunks, valid_utf8

T = TypeVar("T")


def file_chunks(
    path: Path,
    encoding: Encoding,
    on_progress: Callable[[int], None] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[bytes]:
    """The file as valid UTF-8 chunks of whole lines (the last may lack its line end)."""
    with path.open("rb") as stream:
        for chunk in iter_utf8_chunks(stream, encoding, chunk_bytes, on_progress):
            data, _ = valid_utf8(chunk)
            if data:
                yield data


def text_chunks(lines: Iterable[str], chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Python lines as UTF-8 chunks of whole lines; a line without its line end gets one, but the last."""
    pending: list[bytes] = []
    size = 0
    for line, last in with_last(lines):
        ended = line if last or line.endswith("\n") else line + "\n"
        encoded = ended.encode("utf-8", errors="replace")
        pending.append(encoded)
        size += len(encoded)
        if size >= chunk_bytes:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Each item and whether it is the last one."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True


def ints(digits: pa.Array) -> np.ndarray:
    """A column of ASCII digit strings ("" for an absent group) as int64; "" reads 0."""
    filled = pc.if_else(pc.equal(digits, ""), "0", digits)
    values = pc.cast(filled, pa.int64())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)


def join_pieces(pieces: pa.Array, first: np.ndarray) -> pa.Array:
    """Texts of several lines each: `pieces` in order, a text starting at each index of `first`."""
    offsets = np.append(first, len(pieces)).astype(np.int32)
    listed = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pieces)
    return pc.binary_join(listed, "\n")


#: A message open across chunks may not grow past this (a sign the file is not that app's export).
MAX_OPEN_BYTES = 64 * 1024 * 1024


def cut_before_open_message(
    starts: np.ndarray, n: int, last: bool, size: int, source_file: str, app: str
) -> int | None:
    """Where a chunk's finished lines end: before its last message, or all of it at the file's end.

    The last message may go on in the next chunk. None: the chunk is one message still open (carry it).
    """
    cut = n if last or not len(starts) else int(starts[-1])
    if cut == 0 and not last:
        if size > MAX_OPEN_BYTES:
            raise InputError(source_file, f"one message spans more than 64 MiB; not a {app}?")
        return None
    return cut
