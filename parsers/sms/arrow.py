"""Arrow columns built from buffers, without `pa.array`.

`pa.array` (even of a numpy array) and `pa.scalar` import pandas on first use, through pyarrow's
pandas shim: a third of a second before the first batch of a backup. These build the same
columns straight from their buffers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from parsers.base import ParseContext, message_ids
from schemas.message import MESSAGE_SCHEMA, QUARANTINE_SCHEMA, TS_TYPE


def texts(values: list[str]) -> pa.Array:
    """A string column of Python strings."""
    encoded = list(map(str.encode, values))  # UTF-8
    lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


def integers(values: np.ndarray) -> pa.Array:
    """An int64 column of a numpy array."""
    data = np.ascontiguousarray(values, np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def repeated(value: str, count: int) -> pa.Array:
    """A string column of one value, `count` times."""
    encoded = value.encode("utf-8")
    offsets = (np.arange(count + 1, dtype=np.int64) * len(encoded)).astype(np.int32)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(encoded * count)]
    )


def messages(
    ctx: ParseContext,
    source: str,
    ts_ms: np.ndarray,
    speaker: pa.Array,
    text: pa.Array,
    kind: pa.Array,
    line_no: np.ndarray,
    conversation: pa.Array,
) -> pa.Table:
    """A MESSAGE_SCHEMA table: `parsers.base.build_messages` with each row's conversation."""
    n = len(line_no)
    micros = np.ascontiguousarray(ts_ms, np.int64) * 1000
    instants = pa.Array.from_buffers(pa.timestamp("us", tz="UTC"), n, [None, pa.py_buffer(micros)]).cast(
        TS_TYPE
    )
    columns = [
        message_ids(ctx.file_key, line_no),
        repeated(ctx.owner_id, n),
        conversation,
        repeated(source, n),
        instants,
        speaker.cast(pa.string()),
        text.cast(pa.string()),
        kind,
        integers(line_no),
        pa.nulls(n, pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=MESSAGE_SCHEMA)


def quarantine(ctx: ParseContext, line_no: list[int], reasons: list[str], raw: list[str]) -> pa.Table:
    """A QUARANTINE_SCHEMA table: `parsers.base.build_quarantine`."""
    n = len(line_no)
    columns = [
        repeated(ctx.owner_id, n),
        repeated(ctx.upload_id, n),
        repeated(ctx.source_file, n),
        integers(np.array(line_no, np.int64)),
        texts(reasons),
        texts(raw),
    ]
    return pa.Table.from_arrays(columns, schema=QUARANTINE_SCHEMA)
