"""WhatsApp message headers found in every line of a chunk at once, at the byte level.

`date, time - rest` (Android) and `[date, time] rest` (iOS) are scanned over all lines together
with numpy (parsers/kakao/scan.py's cursor grammar), so a chunk of 50,000 lines costs a few dozen
array passes; the regex of `export._HEADER` reads only the rare line the byte grammar cannot (a
header holding direction marks in odd places), after cleaning it as before. Both say the same of
every line without marks (a property test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.kakao.scan import (
    Lines,
    alt,
    first_at_or_after,
    lit,
    num,
    occurrences,
    scan,
    slice_strings,
    split_lines,
)

_SEPS = (("/", 1), (".", 2), ("-", 3))
_DATE_REST = (
    alt("p", _SEPS), alt("", ((" ", 1),), optional=True), num("b", 1, 2),
    alt("q", _SEPS), alt("", ((" ", 1),), optional=True), num("c", 1, 4),
    alt("", ((".", 1),), optional=True), alt("", ((",", 1),), optional=True), lit(" "),
    alt("ko", (("오전 ", 1), ("오후 ", 2)), optional=True),
    num("h", 1, 2), alt("", ((":", 1), (".", 1))), num("m", 2, 2),
)  # fmt: skip
#: The spaces a header may hold before AM/PM (newer exports: a narrow no-break space), in UTF-8.
_SPACES = (b" ", "\u202f".encode(), "\u00a0".encode())
FIELDS = ("br", "width_a", "a", "b", "c", "p", "q", "ko", "h", "m", "s", "ap")


@dataclass
class Headers:
    """Every line of a chunk, and where the header lines' parts lie in its bytes."""

    lines: Lines
    #: Per line: a header, and its numbers (0 where absent; `ap`: 1 AM, 2 PM; `ko`: 1 오전, 2 오후).
    header: np.ndarray
    fields: dict[str, np.ndarray]
    #: Per header line (in line order): where the text after the time starts (leading marks skipped),
    #: where the text after its first `: ` starts (-1: none), and that first `: `-prefix, cleaned.
    rest_a: np.ndarray
    tail_a: np.ndarray
    head: pa.Array
    #: Per header line, with `pieces`: what follows the head up to a next `: `, cleaned ("" if none).
    piece: pa.Array | None = None

    def raw(self, index: np.ndarray | None = None) -> pa.Array:
        """The lines (all, or those at `index`) as written."""
        return self.lines.strings(index)


def scan_headers(data: bytes, pieces: bool = False) -> Headers:
    """Find the header of every line of `data` (UTF-8 whole lines); `pieces` also for detection."""
    lines = split_lines(data)
    odd_at = _odd_positions(lines)
    ok, fields, rest_at = _scan(lines, bool(len(odd_at)))
    # Read from the bytes: a header whose odd characters (leading marks, the narrow space before
    # AM/PM) lie before its text. By the cleaned line's regex: any other line holding one.
    odd_line = np.zeros(len(lines), dtype=bool)
    odd_line[np.searchsorted(lines.start, odd_at, side="right") - 1] = True
    odd_text = ok & (first_at_or_after(odd_at, rest_at, lines.end) >= 0)
    ok &= ~odd_text
    fallback = np.flatnonzero(odd_line & ~ok)
    found = _fallback(lines.strings(fallback).to_pylist()) if len(fallback) else []
    more = np.array([i for i, f in zip(fallback.tolist(), found, strict=True) if f is not None], np.int64)
    extra = [f for f in found if f is not None]
    for name in FIELDS:
        fields[name][more] = [f[0][name] for f in extra]
    header = ok.copy()
    header[more] = True
    rows = np.flatnonzero(header)
    end = lines.end[rows]
    rest_a = rest_at[rows]
    colons = occurrences(lines, b": ")
    p = first_at_or_after(colons, rest_a, end - 1)
    p2 = first_at_or_after(colons, np.where(p >= 0, p + 2, end), end - 1) if pieces else p.copy()
    by_regex = np.zeros(len(rows), dtype=bool)
    by_regex[np.searchsorted(rows, more)] = True
    if len(more):  # their parts as the regex read them; the text as written is a suffix of the line
        ends = lines.end[more]
        rest_a[by_regex] = ends - [len(f[1][0].encode()) for f in extra]
        tails = [f[1][2] for f in extra]
        p[by_regex] = [
            e - len(t.encode()) - 2 if t is not None else -1 for e, t in zip(ends, tails, strict=True)
        ]
        p2[by_regex] = -1
    named = p >= 0
    head = pc.if_else(pa.array(named), slice_strings(lines, rest_a, np.where(named, p, rest_a)), None)
    piece = pa.array(np.full(len(rows), "", dtype=object), pa.string()) if pieces else None
    if piece is not None and (got := named & (p2 >= 0)).any():
        piece = pc.replace_with_mask(piece, pa.array(got), slice_strings(lines, p[got] + 2, p2[got]))
    if len(more):
        mask = pa.array(by_regex)
        head = pc.replace_with_mask(head, mask, pa.array([f[1][1] for f in extra], pa.string()))
        if piece is not None:
            piece = pc.replace_with_mask(piece, mask, pa.array([f[1][3] for f in extra], pa.string()))
    return Headers(lines, header, fields, rest_a, np.where(named, p + 2, -1), head, piece)


def _odd_positions(lines: Lines) -> np.ndarray:
    """Sorted byte positions of direction marks, no-break and narrow no-break spaces, and BOMs."""
    positions = [occurrences(lines, "\u00a0".encode()), occurrences(lines, "\ufeff".encode())]
    e2 = occurrences(lines, b"\xe2\x80")
    third = lines.buf[e2 + 2]
    positions.append(e2[((third >= 0x8E) & (third <= 0x8F)) | ((third >= 0xAA) & (third <= 0xAF))])
    return np.sort(np.concatenate(positions))


def _skip_marks(buf: np.ndarray, cur: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Cursors moved past up to three direction marks (U+200E/F, U+202A-E, U+FEFF)."""
    for _ in range(3):
        b0, b1, b2 = buf[cur], buf[cur + 1], buf[cur + 2]
        mark = (b0 == 0xE2) & (b1 == 0x80) & (((b2 >= 0x8E) & (b2 <= 0x8F)) | ((b2 >= 0xAA) & (b2 <= 0xAE)))
        mark |= (b0 == 0xEF) & (b1 == 0xBB) & (b2 == 0xBF)
        cur = cur + 3 * (mark & (cur + 3 <= end))
    return cur


def _scan(lines: Lines, marks: bool) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Byte grammar of a header over every line: (is a header, fields, where its rest starts)."""
    buf, end = lines.buf, lines.end
    cur = _skip_marks(buf, lines.start, end) if marks else lines.start
    _, cur, got = scan(buf, cur, end, (alt("br", (("[", 1),), optional=True),))
    ok, after_a, got_a = scan(buf, cur, end, (num("a", 1, 4),))
    width_a = after_a - cur
    ok_rest, cur, got_rest = scan(buf, after_a, end, _DATE_REST)
    ok &= ok_rest
    # Seconds: `[:.]` and two digits, or nothing.
    sep = (buf[cur] == 58) | (buf[cur] == 46)
    d1, d2 = buf[cur + 1].astype(np.int64) - 48, buf[cur + 2].astype(np.int64) - 48
    has_s = sep & (d1 >= 0) & (d1 <= 9) & (d2 >= 0) & (d2 <= 9) & (cur + 3 <= end)
    seconds = np.where(has_s, d1 * 10 + d2, 0)
    cur = cur + 3 * has_s
    ap, cur = _ampm(buf, cur, end)
    bracket = got["br"] == 1
    closes_bracket = (buf[cur] == 93) & (buf[cur + 1] == 32) & (cur + 2 <= end)  # "] "
    dash = (buf[cur] == 32) & (buf[cur + 1] == 45) & (buf[cur + 2] == 32) & (cur + 3 <= end)  # " - "
    en_dash = (buf[cur] == 32) & (buf[cur + 1] == 0xE2) & (buf[cur + 2] == 0x80) & (buf[cur + 3] == 0x93)
    en_dash &= (buf[cur + 4] == 32) & (cur + 5 <= end)  # " – "
    ok &= np.where(bracket, closes_bracket, dash | en_dash)
    rest_at = np.where(bracket, cur + 2, np.where(dash, cur + 3, cur + 5))
    rest_at = np.minimum(rest_at, end)
    fields = {
        "br": got["br"], "width_a": width_a, "a": got_a["a"], "b": got_rest["b"], "c": got_rest["c"],
        "p": got_rest["p"], "q": got_rest["q"], "ko": got_rest["ko"], "h": got_rest["h"],
        "m": got_rest["m"], "s": seconds, "ap": ap,
    }  # fmt: skip
    return ok, {k: np.where(ok, v, 0).astype(np.int64) for k, v in fields.items()}, rest_at


def _ampm(buf: np.ndarray, cur: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`[ ]A.M.`-like markers after the time (space, letter, dot, space, M, dot): (1 AM / 2 PM, cursor)."""
    space = _space_length(buf, cur)
    at = cur + space
    letter = buf[at]
    value = np.where((letter == 65) | (letter == 97), 1, np.where((letter == 80) | (letter == 112), 2, 0))
    at = at + 1
    at = at + (buf[at] == 46)
    at = at + _space_length(buf, at)
    is_m = (buf[at] == 77) | (buf[at] == 109)
    at = at + 1
    at = at + (buf[at] == 46)
    found = (value > 0) & is_m & (at <= end)
    return np.where(found, value, 0), np.where(found, at, cur)


def _space_length(buf: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Bytes of the space at each cursor: a space, a no-break or narrow no-break space, or none (0)."""
    length = np.zeros(len(cur), dtype=np.int64)
    for space in _SPACES:
        hit = length == 0
        for j, byte in enumerate(space):
            hit &= buf[cur + j] == byte
        length = np.where(hit, len(space), length)
    return length


def _fallback(raw: list[str]) -> list[tuple[dict[str, int], tuple[str, str | None, str | None, str]] | None]:
    """The rare header the byte grammar cannot read (marks inside it), by the cleaned line's regex."""
    from parsers.whatsapp.export import _as_written, _header, clean_line

    out: list[tuple[dict[str, int], tuple[str, str | None, str | None, str]] | None] = []
    for line in raw:
        match = _header(clean_line(line))
        if match is None:
            out.append(None)
            continue
        marker = (match["ap"] or "").lower().replace(".", "").replace(" ", "")
        ko = {"오전": 1, "오후": 2}.get(match["ko"] or "", 0)
        numbers = {
            "br": int(match["br"] == "["), "width_a": len(match["a"]), "a": int(match["a"]),
            "b": int(match["b"]), "c": int(match["c"]), "p": "/.-".index(match["p"]) + 1,
            "q": "/.-".index(match["q"]) + 1, "ko": ko, "h": int(match["h"]), "m": int(match["m"]),
            "s": int(match["s"] or 0), "ap": {"am": 1, "pm": 2}.get(marker, 0),
        }  # fmt: skip
        rest = match["rest"]
        head, colon, tail = rest.partition(": ")
        piece = tail.partition(": ")[0] if ": " in tail else ""
        written = (
            _as_written(line, len(rest)),
            head if colon else None,
            _as_written(line, len(tail)) if colon else None,
            piece,
        )
        out.append((numbers, written))
    return out
