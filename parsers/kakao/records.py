"""Where each line's record lies: the byte ranges of speaker and text, and the stamp's fields.

The variant's timestamp grammar is scanned over all lines of a chunk at once
(parsers/kakao/scan.py); these functions turn its cursor into the fields a message needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.arrays import int64_values
from parsers.kakao.formats import MONTHS_EN, LineFormat
from parsers.kakao.scan import Lines, first_at_or_after, occurrences, scan

#: A Windows name may contain "] [": how many candidate splits to try before giving up.
_PC_SPLIT_TRIES: Final = 4


@dataclass
class Records:
    """Per line: whether it is a record, and its byte ranges and timestamp fields."""

    valid: np.ndarray
    speaker_a: np.ndarray
    speaker_b: np.ndarray  # speaker_a == speaker_b: no speaker (a stamped event)
    text_a: np.ndarray
    text_b: np.ndarray
    fields: dict[str, np.ndarray]


def line_records(lines: Lines, fmt: LineFormat) -> Records:
    """Scan every line for the variant's record layout."""
    buf, start, end = lines.buf, lines.start, lines.end
    if fmt.tail == "pc":
        return _pc_records(lines, fmt)
    valid, cursor, fields = scan(buf, start, end, fmt.stamp)
    speaker_a = cursor
    speaker_b = cursor.copy()
    text_a = cursor.copy()
    text_b = end.copy()
    may_speak = valid & (fields["sep"] == 1) if fmt.tail == "ios" else valid
    # "name : text": the speaker ends at the first " :" followed by a space or the line end.
    colons = occurrences(lines, b" :")
    after = buf[colons + 2]
    colons = colons[(after == 32) | (after == 10) | (after == 13) | (colons + 2 >= lines.size)]
    p = first_at_or_after(colons, cursor + 1, end - 1)
    speaks = may_speak & (p >= 0) & ((p + 2 == end) | (buf[np.maximum(p, 0) + 2] == 32))
    speaker_b = np.where(speaks, p, speaker_b)
    text_a = np.where(speaks, np.minimum(p + 3, end), text_a)
    return Records(valid, speaker_a, speaker_b, text_a, text_b, fields)


def _pc_records(lines: Lines, fmt: LineFormat) -> Records:
    """`[name] [time] text`: the name ends at the first "] [" that a valid time follows."""
    buf, start, end = lines.buf, lines.start, lines.end
    n = len(start)
    valid = np.zeros(n, dtype=bool)
    speaker_b = start.copy()
    text_a = end.copy()
    fields = {name: np.zeros(n, dtype=np.int64) for name in ("H", "M", "ampm")}
    brackets = occurrences(lines, b"] [")
    rows = np.flatnonzero((end > start) & (buf[start] == 91))  # lines starting with "["
    lo = start[rows] + 2
    for _ in range(_PC_SPLIT_TRIES):
        if not len(rows):
            break
        p = first_at_or_after(brackets, lo, end[rows])
        found = p >= 0
        rows, p, lo = rows[found], p[found], lo[found]
        ok, cursor, got = scan(buf, p + 3, end[rows], fmt.stamp)
        ok &= (cursor < end[rows]) & (buf[cursor] == 93)  # "]"
        after = cursor + 1
        ok &= (after == end[rows]) | (buf[after] == 32)
        done = rows[ok]
        valid[done] = True
        speaker_b[done] = p[ok]
        text_a[done] = np.minimum(after[ok] + 1, end[done])
        for name in fields:
            fields[name][done] = got[name][ok] if name in got else 0
        rows, lo = rows[~ok], p[~ok] + 1
    return Records(valid, start + 1, np.where(valid, speaker_b, start + 1), text_a, end.copy(), fields)


def digits(arr: pa.Array) -> np.ndarray:
    """Digits to int64; -1 where absent."""
    cleaned = pc.if_else(pc.match_substring_regex(arr, "^[0-9]{1,9}$"), arr, pa.scalar(None, arr.type))
    return int64_values(cleaned, -1)


def months(arr: pa.Array) -> np.ndarray:
    """Month numbers from digits or English names (full or abbreviated)."""
    numeric = digits(arr)
    abbr = pc.utf8_lower(pc.utf8_slice_codeunits(arr, 0, 3))
    named = int64_values(pc.index_in(abbr, value_set=pa.array(MONTHS_EN, abbr.type)), -2) + 1
    return np.asarray(np.where(numeric >= 0, numeric, named), dtype=np.int64)
