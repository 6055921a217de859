"""Short byte strings (attribute names, element ends, references, numbers) as fixed-width keys.

A key is 16 bytes: a length byte and up to 15 bytes. The distinct keys of a column are found with
Arrow's hashing, or, for keys that keep coming back all through a file, in a table indexed by a
hash of the key's two words, so that each distinct key is classified once, in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import pyarrow as pa

KEY: Final = 16
_EMPTY: Final = -2
_MIX: Final = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))


def distinct(keys: np.ndarray) -> tuple[np.ndarray, list[bytes]]:
    """Codes into the distinct rows of a (n, KEY) uint8 array, and those rows as bytes."""
    if not len(keys):
        return np.zeros(0, np.int64), []
    flat = np.ascontiguousarray(keys)
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(KEY), len(flat), [None, pa.py_buffer(flat)])
    encoded = fixed.dictionary_encode()
    indices = encoded.indices  # int32, no nulls; read from its buffer (`to_numpy` imports pandas)
    codes = np.frombuffer(indices.buffers()[1], np.int32, len(indices), 4 * indices.offset).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


class KeyTable:
    """Keys seen in a file, each classified once in Python, then found by a hash of its two words.

    A key missing from its slot (new, or another key there) is classified through a dict; the
    slot then holds it.
    """

    def __init__(self, classify: Callable[[bytes], int], bits: int = 12) -> None:
        """Keys are classified as `classify` says; the table has 2**bits slots."""
        self.classify = classify
        self.bits = bits
        self.seen: dict[bytes, int] = {}
        self.first, self.second = np.zeros(1 << bits, np.uint64), np.zeros(1 << bits, np.uint64)
        self.found = np.full(1 << bits, _EMPTY, np.int64)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """What each key (rows of KEY bytes) is."""
        pairs = keys.view(np.uint64).reshape(-1, 2)
        first, second = pairs[:, 0], pairs[:, 1]
        slot = ((first * _MIX[0]) ^ (second * _MIX[1])) >> np.uint64(64 - self.bits)
        found: np.ndarray = self.found[slot]
        missing = (found == _EMPTY) | (self.first[slot] != first) | (self.second[slot] != second)
        if missing.any():
            miss = np.flatnonzero(missing)
            codes, uniques = distinct(keys[miss])
            classes = np.array([self._classify(key) for key in uniques], np.int64)
            found[miss] = classes[codes]
            one = miss[np.unique(codes, return_index=True)[1]]  # a row of each new key
            self.first[slot[one]], self.second[slot[one]] = first[one], second[one]
            self.found[slot[one]] = found[one]
        return found

    def _classify(self, key: bytes) -> int:
        if key not in self.seen:
            self.seen[key] = self.classify(key)
        return self.seen[key]
