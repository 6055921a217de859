"""Message texts cut from the chunk's buffer, with their continuation lines."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.kakao.scan import Lines, slice_strings


def message_texts(
    lines: Lines,
    starts: np.ndarray,
    text_a: np.ndarray,
    text_b: np.ndarray,
    cont_idx: np.ndarray,
    cont_owner: np.ndarray,
) -> pa.Array:
    """Message texts; a multi-line message is one byte range when its lines are contiguous."""
    if not len(cont_idx):
        return slice_strings(lines, text_a, text_b)
    unit_of_cont = np.searchsorted(starts, cont_owner)
    group_end = np.flatnonzero(np.diff(np.append(unit_of_cont, -1)) != 0)
    group_units = unit_of_cont[group_end]
    counts = np.diff(np.concatenate([[-1], group_end]))
    last_line = cont_idx[group_end]
    contiguous = last_line - starts[group_units] == counts
    extended = group_units[contiguous]
    text_b = text_b.copy()
    text_b[extended] = lines.end[last_line[contiguous]]
    text = slice_strings(lines, text_a, text_b)
    if lines.cr.any() and len(extended):
        # Only a message whose inner lines end in CRLF needs folding (raw mobile exports end
        # inner lines in a bare LF); count CRLF-terminated lines before each range's last.
        crs = np.concatenate([[0], np.cumsum(lines.cr)])
        first_line = starts[extended]
        inner_cr = crs[last_line[contiguous]] - crs[first_line]
        with_cr = extended[inner_cr > 0]
        if len(with_cr):
            fixed = pc.replace_substring(text.take(pa.array(with_cr)), "\r\n", "\n")
            mask = np.zeros(len(text), dtype=bool)
            mask[with_cr] = True
            text = pc.replace_with_mask(text, pa.array(mask), fixed)
    # Rare: something (a day marker) sits between a message and its continuation lines.
    scattered = np.isin(unit_of_cont, group_units[~contiguous])
    if scattered.any():
        picked = cont_idx[scattered]
        conts = lines.strings(picked).to_pylist()
        text = join_continuations(text, starts, cont_owner[scattered], conts)
    return text


def not_trailing_blank(lines: Lines, cont_idx: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Mask of continuation lines to keep: blank lines at the end of a message are dropped."""
    if not len(cont_idx):
        return np.zeros(0, dtype=bool)
    nonblank = lines.end[cont_idx] > lines.start[cont_idx]
    r_nonblank = nonblank[::-1]
    r_owner = owners[::-1]
    positions = np.arange(len(r_owner))
    group_first = np.maximum.accumulate(np.where(np.diff(np.concatenate([[-1], r_owner])) != 0, positions, 0))
    last_nonblank = np.maximum.accumulate(np.where(r_nonblank, positions, -1))
    return np.asarray((last_nonblank >= group_first)[::-1])


def join_continuations(first: pa.Array, starts: np.ndarray, owners: np.ndarray, conts: list[str]) -> pa.Array:
    """Append continuation lines to their unit's first text; trailing blank lines are dropped."""
    if not conts:
        return first
    unit_pos = np.searchsorted(starts, owners)
    groups: dict[int, list[str]] = {}
    for pos, line in zip(unit_pos.tolist(), conts, strict=True):
        groups.setdefault(pos, []).append(line)
    positions = np.fromiter(groups, dtype=np.int64, count=len(groups))
    heads = first.take(pa.array(positions)).to_pylist()
    joined = []
    for head, tail in zip(heads, groups.values(), strict=True):
        while tail and not tail[-1]:
            tail.pop()
        joined.append("\n".join([head, *tail]) if tail else head)
    mask = np.zeros(len(first), dtype=bool)
    mask[positions] = True
    return pc.replace_with_mask(first, pa.array(mask), pa.array(joined, first.type))
