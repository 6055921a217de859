"""Vectorised parser for the line-based KakaoTalk exports (Windows PC, Android, iOS).

A chunk of lines is classified with Arrow's RE2 kernels in a few passes over the whole column
(record, then day-marker/event patterns only on the few lines that are not records); Python
touches only continuation lines and rejected lines. State that crosses chunk boundaries (the
open message, the current day marker, the last record time) is carried explicitly, so memory
stays flat in file size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.base import ParseBatch, ParseContext, build_messages, build_quarantine, local_to_utc
from parsers.errors import InputError
from parsers.kakao.formats import MONTHS_EN, LineFormat
from parsers.kakao.kinds import KIND_CODE, classify_kinds, kinds_to_arrow
from parsers.kakao.reader import Chunk

# Line categories.
_REC: Final = 0  # message or stamped event
_EVT: Final = 1  # system event without a time (Windows PC)
_CONT: Final = 2  # continuation of the open message
_SKIP: Final = 3  # header, blank header line, day marker
_BAD_HEADER: Final = 4  # unrecognised line before the first message
_TRUNC: Final = 5  # last line cut off mid-stamp

#: A message open across chunks may not grow past this (a sign the file is not an export).
MAX_PENDING_BYTES: Final = 64 * 1024 * 1024
#: Earliest and latest plausible years of a KakaoTalk message (the app launched in 2010).
_YEAR_RANGE: Final = (2000, 2100)


@dataclass
class _Carry:
    """State from earlier chunks."""

    lines: pa.Array | None = None
    cr: np.ndarray | None = None
    first_line_no: int = 1
    prev_line_had_cr: bool = True
    date: tuple[int, int, int] | None = None
    last_local: int | None = None
    seen_unit: bool = False


class LineExportParser:
    """Feed UTF-8 chunks of whole lines in file order; get ParseBatches back."""

    def __init__(self, fmt: LineFormat, ctx: ParseContext, crlf_records: bool, encoding_name: str) -> None:
        """Parse with one format variant; `crlf_records` enables the bare-LF continuation hint."""
        self.fmt = fmt
        self.ctx = ctx
        self.crlf_records = crlf_records
        self.encoding_name = encoding_name
        self.carry = _Carry()
        self._next_line_no = 1
        self._header_patterns = "|".join(f"(?:{p})" for p in (*fmt.titles, *fmt.preamble))
        self._events = "|".join(f"(?:{p})" for p in fmt.timeless_events)

    def feed(self, chunk: Chunk) -> ParseBatch:
        """Parse one chunk; lines of a message that may continue in the next chunk are held back."""
        lines, cr, bad_bytes, ends_with_newline = self._split(chunk)
        new_lines = len(lines)
        carry = self.carry
        base_line_no = self._next_line_no
        if carry.lines is not None:
            base_line_no = carry.first_line_no
            lines = pa.concat_arrays([carry.lines, lines])
            cr = np.concatenate([carry.cr if carry.cr is not None else np.zeros(0, bool), cr])
        self._next_line_no += new_lines
        n = len(lines)
        if n == 0:
            return self._empty()

        prev_cr = np.empty(n, dtype=bool)
        prev_cr[0] = carry.prev_line_had_cr
        prev_cr[1:] = cr[:-1]
        forced_cont = ~prev_cr if self.crlf_records else np.zeros(n, dtype=bool)

        rec = pc.extract_regex(lines, self.fmt.record)
        is_rec = _valid(rec) & ~forced_cont
        cat = np.where(is_rec, _REC, _CONT).astype(np.int8)
        day_y, day_m, day_d = self._day_markers(lines, cat, forced_cont, n)

        if self._events:
            others = np.flatnonzero(cat == _CONT)
            if len(others):
                hit = _bool(pc.match_substring_regex(lines.take(pa.array(others)), self._events))
                cat[others[hit & ~forced_cont[others]]] = _EVT

        is_start = (cat == _REC) | (cat == _EVT)
        self._mark_header(lines, cat, is_start)
        if chunk.final and not ends_with_newline and self.fmt.record_start:
            last = n - 1
            if (
                cat[last] == _CONT
                and pc.match_substring_regex(lines.slice(last, 1), self.fmt.record_start)[0].as_py()
            ):
                cat[last] = _TRUNC

        if chunk.final:
            cut = n
        else:
            starts = np.flatnonzero(is_start)
            cut = int(starts[-1]) if len(starts) else 0
            if cut == 0 and lines.nbytes > MAX_PENDING_BYTES:
                raise InputError(
                    self.ctx.source_file, "a single message spans more than 64 MiB; not a KakaoTalk export?"
                )

        batch = self._emit(lines, cr, rec, cat, (day_y, day_m, day_d), cut, base_line_no, bad_bytes)

        if cut < n:
            carry.lines = lines.slice(cut)
            carry.cr = cr[cut:]
            carry.first_line_no = base_line_no + cut
            if cut > 0:
                carry.prev_line_had_cr = bool(cr[cut - 1])
        else:
            carry.lines = None
            carry.cr = None
        return batch

    # -- steps ---------------------------------------------------------------------------------

    def _split(self, chunk: Chunk) -> tuple[pa.Array, np.ndarray, bool, bool]:
        data = chunk.data
        bad = chunk.had_decode_errors
        if not data:
            return pa.array([], pa.large_string()), np.zeros(0, dtype=bool), bad, True
        whole = pa.LargeStringArray.from_buffers(
            1, pa.py_buffer(np.array([0, len(data)], dtype=np.int64)), pa.py_buffer(data)
        )
        try:
            whole.validate(full=True)
        except pa.ArrowInvalid:
            data = data.decode("utf-8", errors="replace").encode("utf-8")
            whole = pa.array([data.decode("utf-8")], pa.large_string())
            bad = True
        ends_with_newline = data.endswith(b"\n")
        lines = pc.split_pattern(whole, "\n").flatten()
        if ends_with_newline:
            lines = lines.slice(0, len(lines) - 1)
        cr = _bool(pc.ends_with(lines, "\r"))
        if cr.any():
            lines = pc.utf8_rtrim(lines, characters="\r")
        return lines, cr, bad, ends_with_newline

    def _day_markers(
        self, lines: pa.Array, cat: np.ndarray, forced_cont: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        day_y = np.full(n, -1, dtype=np.int64)
        day_m = np.full(n, -1, dtype=np.int64)
        day_d = np.full(n, -1, dtype=np.int64)
        if not self.fmt.day_marker:
            return day_y, day_m, day_d
        others = np.flatnonzero((cat == _CONT) & ~forced_cont)
        if not len(others):
            return day_y, day_m, day_d
        found = pc.extract_regex(lines.take(pa.array(others)), self.fmt.day_marker)
        hit = _valid(found)
        if not hit.any():
            return day_y, day_m, day_d
        at = others[hit]
        marks = found.filter(pa.array(hit))
        cat[at] = _SKIP
        day_y[at] = _ints(marks.field("y"))
        day_m[at] = _months(marks.field("mon"))
        day_d[at] = _ints(marks.field("d"))
        return day_y, day_m, day_d

    def _mark_header(self, lines: pa.Array, cat: np.ndarray, is_start: np.ndarray) -> None:
        if self.carry.seen_unit:
            return
        starts = np.flatnonzero(is_start)
        head_end = int(starts[0]) if len(starts) else len(cat)
        if head_end == 0:
            return
        head = lines.slice(0, head_end)
        known = _bool(
            pc.match_substring_regex(pc.utf8_ltrim(head, characters="\ufeff"), self._header_patterns)
        )
        blank = _bool(pc.equal(pc.utf8_trim_whitespace(head), ""))
        region = cat[:head_end]
        conts = region == _CONT
        region[conts & (known | blank)] = _SKIP
        region[conts & ~(known | blank)] = _BAD_HEADER

    def _emit(
        self,
        lines: pa.Array,
        cr: np.ndarray,
        rec: pa.StructArray,
        cat: np.ndarray,
        days: tuple[np.ndarray, np.ndarray, np.ndarray],
        cut: int,
        base_line_no: int,
        bad_bytes: bool,
    ) -> ParseBatch:
        fmt = self.fmt
        carry = self.carry
        lines = lines.slice(0, cut)
        rec = rec.slice(0, cut)
        cat = cat[:cut]
        q_lines: list[int] = []
        q_reasons: list[str] = []
        q_raw: list[str] = []
        for category, reason in (
            (_BAD_HEADER, "unrecognised line before the first message"),
            (_TRUNC, "truncated last line"),
        ):
            idx = np.flatnonzero(cat == category)
            if len(idx):
                q_lines.extend((idx + base_line_no).tolist())
                q_reasons.extend([reason] * len(idx))
                q_raw.extend(lines.take(pa.array(idx)).to_pylist())

        is_start = (cat == _REC) | (cat == _EVT)
        starts = np.flatnonzero(is_start)
        if len(starts):
            carry.seen_unit = True
        unit_is_rec = cat[starts] == _REC
        start_arr = pa.array(starts, pa.int64())
        rec_units = rec.take(start_arr)

        # Text: the record's text field, or the whole line for a time-less event; plus continuations.
        rec_text = pc.if_else(pc.is_null(rec_units.field("text")), "", rec_units.field("text"))
        text = pc.if_else(pa.array(unit_is_rec), rec_text, lines.take(start_arr))
        position = (
            np.maximum.accumulate(np.where(is_start, np.arange(cut), -1)) if cut else np.zeros(0, np.int64)
        )
        cont_idx = np.flatnonzero((cat == _CONT) & (position >= 0))
        text = _join_continuations(
            text, starts, position[cont_idx], lines.take(pa.array(cont_idx)).to_pylist()
        )

        local, reasons = self._timestamps(rec_units, unit_is_rec, starts, days, cut)

        speaker = rec_units.field("speaker")
        speaker = pc.if_else(
            pc.and_(pa.array(unit_is_rec), pc.not_equal(speaker, "")), speaker, pa.scalar(None, speaker.type)
        )
        is_event = _bool(pc.is_null(speaker))
        kinds = classify_kinds(text, fmt.empty_text_kind)
        kinds[is_event] = KIND_CODE["system"]
        # A system kind found from text (a notice) also has no speaker, by the contract.
        speaker = pc.if_else(pa.array(kinds == KIND_CODE["system"]), pa.scalar(None, speaker.type), speaker)

        if bad_bytes:
            undecodable = _bool(pc.match_substring(text, "\ufffd"))
            reasons = np.where(
                undecodable & (reasons == ""), f"undecodable bytes in {self.encoding_name}", reasons
            )
        bad = reasons != ""
        if bad.any():
            bad_idx = np.flatnonzero(bad)
            raw = _join_continuations(
                lines.take(start_arr), starts, position[cont_idx], lines.take(pa.array(cont_idx)).to_pylist()
            )
            q_lines.extend((starts[bad_idx] + base_line_no).tolist())
            q_reasons.extend(reasons[bad_idx].tolist())
            q_raw.extend(raw.take(pa.array(bad_idx)).to_pylist())
        good = ~bad
        keep = pa.array(good)
        ts = local_to_utc(local[good], self.ctx.timezone)
        messages = build_messages(
            self.ctx,
            fmt.source,
            ts,
            speaker.filter(keep),
            text.filter(keep),
            kinds_to_arrow(kinds[good]),
            starts[good] + base_line_no,
        )
        return ParseBatch(messages, build_quarantine(self.ctx, q_lines, q_reasons, q_raw))

    def _timestamps(
        self,
        rec_units: pa.StructArray,
        unit_is_rec: np.ndarray,
        starts: np.ndarray,
        days: tuple[np.ndarray, np.ndarray, np.ndarray],
        cut: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Local wall-clock seconds of each unit, and a rejection reason ('' when fine)."""
        carry = self.carry
        n_units = len(starts)
        reasons = np.full(n_units, "", dtype=object)
        if self.fmt.date_from_marker:
            day_y, day_m, day_d = (
                _ffill(a[:cut], carry.date[i] if carry.date else -1) for i, a in enumerate(days)
            )
            y, mo, d = day_y[starts], day_m[starts], day_d[starts]
            if cut:
                last = (int(day_y[cut - 1]), int(day_m[cut - 1]), int(day_d[cut - 1]))
                carry.date = last if last[0] >= 0 else carry.date
        else:
            y = _ints(rec_units.field("y"), unit_is_rec)
            mo = _months(rec_units.field("mon"), unit_is_rec)
            d = _ints(rec_units.field("d"), unit_is_rec)
        hour = _ints(rec_units.field("H"), unit_is_rec)
        minute = _ints(rec_units.field("M"), unit_is_rec)
        ampm = pc.if_else(pc.is_null(rec_units.field("ampm")), "", rec_units.field("ampm"))
        has_ampm = _bool(pc.not_equal(ampm, ""))
        is_pm = _bool(pc.match_substring_regex(ampm, "^(?:오후|[Pp])"))
        hour24 = np.where(has_ampm, hour % 12 + 12 * is_pm, hour)
        hour_ok = np.where(has_ampm, (hour >= 0) & (hour <= 12), (hour >= 0) & (hour <= 23)) & (minute <= 59)

        date_ok = (y >= _YEAR_RANGE[0]) & (y <= _YEAR_RANGE[1]) & (mo >= 1) & (mo <= 12) & (d >= 1)
        date_ok &= d <= _days_in_month(np.where(date_ok, y, 2000), np.where(date_ok, mo, 1))
        midnight = (
            _days_from_civil(np.where(date_ok, y, 2000), np.where(date_ok, mo, 1), np.where(date_ok, d, 1))
            * 86400
        )
        local = midnight + hour24 * 3600 + minute * 60

        rec_ok = unit_is_rec & date_ok & hour_ok
        if self.fmt.date_from_marker:
            reasons[unit_is_rec & (y < 0)] = "message before any date line"
        reasons[unit_is_rec & ~rec_ok & (reasons == "")] = "invalid date or time"

        events = ~unit_is_rec
        if events.any():
            # A time-less event takes the previous message's time, but never a time before its day.
            prev = np.where(rec_ok, local, np.iinfo(np.int64).min)
            prev = np.maximum.accumulate(
                np.concatenate(
                    [[carry.last_local if carry.last_local is not None else np.iinfo(np.int64).min], prev]
                )
            )[:-1]
            event_local = np.where(date_ok, np.maximum(prev, midnight), prev)
            local = np.where(events, event_local, local)
            no_time = events & (local == np.iinfo(np.int64).min)
            reasons[no_time] = "system event before any dated message"
        if rec_ok.any():
            carry.last_local = int(local[np.flatnonzero(rec_ok)[-1]])
        return local, reasons.astype(str)

    def _empty(self) -> ParseBatch:
        from parsers.base import empty_batch

        return empty_batch(self.ctx)


def _join_continuations(
    first: pa.Array, starts: np.ndarray, owners: np.ndarray, conts: list[str]
) -> pa.Array:
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
        while tail and not tail[-1].strip():
            tail.pop()
        joined.append("\n".join([head, *tail]) if tail else head)
    mask = np.zeros(len(first), dtype=bool)
    mask[positions] = True
    return pc.replace_with_mask(first, pa.array(mask), pa.array(joined, first.type))


def _valid(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _ints(arr: pa.Array, where: np.ndarray | None = None) -> np.ndarray:
    """Digits to int64; -1 where absent or not selected."""
    cleaned = pc.if_else(pc.match_substring_regex(arr, "^[0-9]{1,9}$"), arr, pa.scalar(None, arr.type))
    out = pc.fill_null(pc.cast(cleaned, pa.int64()), -1).to_numpy(zero_copy_only=False)
    if where is not None:
        out = np.where(where, out, -1)
    return np.asarray(out, dtype=np.int64)


def _months(arr: pa.Array, where: np.ndarray | None = None) -> np.ndarray:
    """Month numbers from digits or English names (full or abbreviated)."""
    numeric = _ints(arr, where)
    abbr = pc.utf8_lower(pc.utf8_slice_codeunits(arr, 0, 3))
    named = pc.fill_null(pc.index_in(abbr, value_set=pa.array(MONTHS_EN, abbr.type)), -2).to_numpy(
        zero_copy_only=False
    )
    out = np.where(numeric >= 0, numeric, np.asarray(named, dtype=np.int64) + 1)
    if where is not None:
        out = np.where(where, out, -1)
    return np.asarray(out, dtype=np.int64)


def _ffill(values: np.ndarray, initial: int) -> np.ndarray:
    idx = np.where(values >= 0, np.arange(len(values)), -1)
    idx = np.maximum.accumulate(idx) if len(idx) else idx
    return np.where(idx >= 0, values[np.maximum(idx, 0)], initial)


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), vectorised."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146097 + doe - 719468, dtype=np.int64)


def _days_in_month(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    lengths = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    return np.asarray(lengths[np.clip(m, 0, 12)] + ((m == 2) & leap), dtype=np.int64)
