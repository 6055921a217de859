"""Arrow to numpy without detours: boolean and integer columns as plain numpy arrays.

`Array.to_numpy(zero_copy_only=False)` on a boolean column goes through pyarrow's pandas shim
(a 0.3 s import on first use); a cast to int8 keeps the conversion inside Arrow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def bool_mask(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as numpy bool; nulls count as False."""
    as_int = pc.cast(pc.fill_null(arr, False), pa.int8())
    if isinstance(as_int, pa.ChunkedArray):
        as_int = as_int.combine_chunks()
    return np.asarray(as_int.to_numpy(zero_copy_only=True), dtype=bool) if len(as_int) else np.zeros(0, bool)


def not_null_mask(arr: pa.Array) -> np.ndarray:
    """Which entries are not null."""
    return bool_mask(arr.is_valid())


def int64_values(arr: pa.Array, fill: int) -> np.ndarray:
    """An integer column as numpy int64; nulls become `fill`."""
    filled = pc.fill_null(pc.cast(arr, pa.int64()), fill)
    return (
        np.asarray(filled.to_numpy(zero_copy_only=True), dtype=np.int64)
        if len(filled)
        else np.zeros(0, np.int64)
    )


def is_utf8(data: bytes) -> bool:
    """Whether `data` is valid UTF-8 (checked by Arrow in one pass, no Python string made)."""
    if data.isascii():
        return True
    whole = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, whole, pa.py_buffer(data)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True
