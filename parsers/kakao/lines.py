"""Vectorised parser for the line-based KakaoTalk exports (Windows PC, Android, iOS).

A chunk's lines are scanned all at once at the byte level (parsers/kakao/scan.py): the variant's
timestamp grammar finds the records and their fields, separator positions split speaker from
text, and strings are cut out of the buffer without Python objects. Python touches only the few
lines that are not single-line records (continuations, day markers, events, headers). State that
crosses chunk boundaries (the open message, the current day, the last record time) is carried
explicitly, so memory stays flat in file size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.arrays import bool_mask, not_null_mask
from parsers.base import (
    ParseBatch,
    ParseContext,
    build_messages,
    build_quarantine,
    empty_batch,
    local_to_utc,
)
from parsers.dates import days_from_civil, days_in_month, ffill
from parsers.errors import InputError
from parsers.kakao.formats import LineFormat
from parsers.kakao.kinds import KIND_CODE, classify_kinds, kinds_to_arrow
from parsers.kakao.reader import Chunk, valid_utf8
from parsers.kakao.records import Records, digits, line_records, months
from parsers.kakao.scan import (
    Lines,
    first_codepoints,
    slice_strings,
    split_lines,
)
from parsers.kakao.texts import join_continuations, message_texts, not_trailing_blank

# Line categories.
_REC: Final = 0  # message or stamped event
_EVT: Final = 1  # system event without a time (Windows PC)
_CONT: Final = 2  # continuation of the open message
_SKIP: Final = 3  # header, blank header line, day marker
_BAD_HEADER: Final = 4  # unrecognised line before the first message
_TRUNC: Final = 5  # last line cut off mid-stamp

#: A message open across chunks may not grow past this (a sign the file is not an export).
MAX_PENDING_BYTES: Final = 64 * 1024 * 1024
#: Plausible years of a KakaoTalk message (the app launched in 2010).
_YEAR_RANGE: Final = (2000, 2100)
_NO_TIME: Final = np.iinfo(np.int64).min
# Rejection reasons of a message, as codes (texts in LineExportParser._reason_texts).
_OK, _NO_DATE_LINE, _INVALID_STAMP, _EVENT_NO_TIME, _UNDECODABLE = range(5)


@dataclass
class _Carry:
    """State from earlier chunks."""

    data: bytes = b""
    lines: int = 0
    first_line_no: int = 1
    prev_line_had_cr: bool = True
    date: tuple[int, int, int] | None = None
    last_local: int | None = None
    seen_unit: bool = False
    #: The carried lines came from a chunk with undecodable bytes.
    bad_bytes: bool = False


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
        self._reason_texts = {
            _NO_DATE_LINE: "message before any date line",
            _INVALID_STAMP: "invalid date or time",
            _EVENT_NO_TIME: "system event before any dated message",
            _UNDECODABLE: f"undecodable bytes in {encoding_name}",
        }

    def feed(self, chunk: Chunk) -> ParseBatch:
        """Parse one chunk; lines of a message that may continue in the next chunk are held back."""
        data, bad_bytes = valid_utf8(chunk)
        carry = self.carry
        bad_bytes = bad_bytes or (carry.bad_bytes and bool(carry.data))
        base_line_no = carry.first_line_no if carry.data else self._next_line_no
        data = carry.data + data
        lines = split_lines(data)
        n = len(lines)
        self._next_line_no += n - carry.lines
        if n == 0:
            return self._empty()

        prev_cr = np.empty(n, dtype=bool)
        prev_cr[0] = carry.prev_line_had_cr
        prev_cr[1:] = lines.cr[:-1]
        forced_cont = ~prev_cr if self.crlf_records else np.zeros(n, dtype=bool)

        rec = line_records(lines, self.fmt)
        is_rec = rec.valid & ~forced_cont
        cat = np.where(is_rec, _REC, _CONT).astype(np.int8)
        others = np.flatnonzero(cat == _CONT)
        other_text = lines.strings(others)
        days = self._day_markers(other_text, others, cat, forced_cont, n)
        if self._events and len(others):
            hit = bool_mask(pc.match_substring_regex(other_text, self._events))
            events = others[hit & ~forced_cont[others] & (cat[others] == _CONT)]
            cat[events] = _EVT

        is_start = (cat == _REC) | (cat == _EVT)
        self._mark_header(lines, cat, is_start)
        if chunk.final and not data.endswith(b"\n") and self.fmt.record_start:
            last = n - 1
            tail = lines.strings(np.array([last]))
            if cat[last] == _CONT and pc.match_substring_regex(tail, self.fmt.record_start)[0].as_py():
                cat[last] = _TRUNC

        if chunk.final:
            cut = n
        else:
            starts = np.flatnonzero(is_start)
            cut = int(starts[-1]) if len(starts) else 0
            if cut == 0 and len(data) > MAX_PENDING_BYTES:
                raise InputError(
                    self.ctx.source_file, "a single message spans more than 64 MiB; not a KakaoTalk export?"
                )

        batch = self._emit(lines, rec, cat, days, cut, base_line_no, bad_bytes)

        if cut < n:
            carry.data = data[int(lines.start[cut]) :]
            carry.lines = n - cut
            carry.first_line_no = base_line_no + cut
            carry.bad_bytes = bad_bytes
            if cut > 0:
                carry.prev_line_had_cr = bool(lines.cr[cut - 1])
        else:
            carry.data = b""
            carry.lines = 0
        return batch

    # -- steps ---------------------------------------------------------------------------------

    def _day_markers(
        self, other_text: pa.Array, others: np.ndarray, cat: np.ndarray, forced_cont: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        day_y = np.full(n, -1, dtype=np.int64)
        day_m = np.full(n, -1, dtype=np.int64)
        day_d = np.full(n, -1, dtype=np.int64)
        if not self.fmt.day_marker or not len(others):
            return day_y, day_m, day_d
        found = pc.extract_regex(other_text, self.fmt.day_marker)
        hit = not_null_mask(found) & ~forced_cont[others]
        if not hit.any():
            return day_y, day_m, day_d
        at = others[hit]
        marks = found.filter(pa.array(hit))
        cat[at] = _SKIP
        day_y[at] = digits(marks.field("y"))
        day_m[at] = months(marks.field("mon"))
        day_d[at] = digits(marks.field("d"))
        return day_y, day_m, day_d

    def _mark_header(self, lines: Lines, cat: np.ndarray, is_start: np.ndarray) -> None:
        if self.carry.seen_unit:
            return
        starts = np.flatnonzero(is_start)
        head_end = int(starts[0]) if len(starts) else len(cat)
        if head_end == 0:
            return
        head = lines.strings(np.arange(head_end))
        known = bool_mask(
            pc.match_substring_regex(pc.utf8_ltrim(head, characters="\ufeff"), self._header_patterns)
        )
        blank = bool_mask(pc.equal(pc.utf8_trim_whitespace(head), ""))
        region = cat[:head_end]
        conts = region == _CONT
        region[conts & (known | blank)] = _SKIP
        region[conts & ~(known | blank)] = _BAD_HEADER

    def _emit(
        self,
        lines: Lines,
        rec: Records,
        cat: np.ndarray,
        days: tuple[np.ndarray, np.ndarray, np.ndarray],
        cut: int,
        base_line_no: int,
        bad_bytes: bool,
    ) -> ParseBatch:
        fmt = self.fmt
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
                q_raw.extend(lines.strings(idx).to_pylist())

        is_start = (cat == _REC) | (cat == _EVT)
        starts = np.flatnonzero(is_start)
        if len(starts):
            self.carry.seen_unit = True
        unit_is_rec = cat[starts] == _REC

        # Text: the record's text range, or the whole line for a time-less event; plus continuations.
        text_a = np.where(unit_is_rec, rec.text_a[starts], lines.start[starts])
        text_b = np.where(unit_is_rec, rec.text_b[starts], lines.end[starts])
        owner = (
            np.maximum.accumulate(np.where(is_start, np.arange(cut), -1)) if cut else np.zeros(0, np.int64)
        )
        cont_idx = np.flatnonzero((cat == _CONT) & (owner >= 0))
        cont_idx = cont_idx[not_trailing_blank(lines, cont_idx, owner[cont_idx])]
        cont_owner = owner[cont_idx]
        text = message_texts(lines, starts, text_a, text_b, cont_idx, cont_owner)

        fields = {name: values[starts] for name, values in rec.fields.items()}
        local, reasons = self._timestamps(fields, unit_is_rec, starts, days, cut)

        has_speaker = unit_is_rec & (rec.speaker_b[starts] > rec.speaker_a[starts])
        speaker = slice_strings(lines, rec.speaker_a[starts], rec.speaker_b[starts])
        kinds = classify_kinds(text, fmt.empty_text_kind, first_codepoints(lines, text_a, text_b))
        kinds[~has_speaker] = KIND_CODE["system"]
        # A system kind found from text (a notice) also has no speaker, by the contract.
        has_speaker &= kinds != KIND_CODE["system"]
        speaker = pc.if_else(pa.array(has_speaker), speaker, pa.scalar(None, pa.string()))

        if bad_bytes:
            undecodable = bool_mask(pc.match_substring(text, "\ufffd"))
            reasons = np.where(undecodable & (reasons == _OK), _UNDECODABLE, reasons)
        bad = reasons != _OK
        if bad.any():
            bad_idx = np.flatnonzero(bad)
            cont_text = lines.strings(cont_idx).to_pylist()
            raw = join_continuations(lines.strings(starts), starts, cont_owner, cont_text)
            q_lines.extend((starts[bad_idx] + base_line_no).tolist())
            q_reasons.extend(self._reason_texts[code] for code in reasons[bad_idx].tolist())
            q_raw.extend(raw.take(pa.array(bad_idx)).to_pylist())
        good = ~bad
        keep = pa.array(good)
        messages = build_messages(
            self.ctx,
            fmt.source,
            local_to_utc(local[good], self.ctx.timezone),
            speaker.filter(keep),
            text.filter(keep),
            kinds_to_arrow(kinds[good]),
            starts[good] + base_line_no,
        )
        return ParseBatch(messages, build_quarantine(self.ctx, q_lines, q_reasons, q_raw))

    def _timestamps(
        self,
        fields: dict[str, np.ndarray],
        unit_is_rec: np.ndarray,
        starts: np.ndarray,
        days: tuple[np.ndarray, np.ndarray, np.ndarray],
        cut: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Local wall-clock seconds of each unit, and a rejection reason code (_OK when fine)."""
        carry = self.carry
        n_units = len(starts)
        reasons = np.full(n_units, _OK, dtype=np.int8)
        if self.fmt.date_from_marker:
            initial = carry.date or (-1, -1, -1)
            day_y, day_m, day_d = (ffill(a[:cut], initial[i]) for i, a in enumerate(days))
            y, mo, d = day_y[starts], day_m[starts], day_d[starts]
            if cut and day_y[cut - 1] >= 0:
                carry.date = (int(day_y[cut - 1]), int(day_m[cut - 1]), int(day_d[cut - 1]))
        else:
            y, mo, d = (np.where(unit_is_rec, fields[k], -1) for k in ("y", "mon", "d"))
        hour = np.where(unit_is_rec, fields["H"], -1)
        minute = np.where(unit_is_rec, fields["M"], -1)
        ampm = fields["ampm"]
        hour24 = np.where(ampm > 0, hour % 12 + 12 * (ampm == 2), hour)
        hour_ok = np.where(ampm > 0, (hour >= 0) & (hour <= 12), (hour >= 0) & (hour <= 23)) & (minute <= 59)

        date_ok = (y >= _YEAR_RANGE[0]) & (y <= _YEAR_RANGE[1]) & (mo >= 1) & (mo <= 12) & (d >= 1)
        date_ok &= d <= days_in_month(np.where(date_ok, y, 2000), np.where(date_ok, mo, 1))
        safe = (np.where(date_ok, y, 2000), np.where(date_ok, mo, 1), np.where(date_ok, d, 1))
        midnight = days_from_civil(*safe) * 86400
        local = midnight + hour24 * 3600 + minute * 60

        rec_ok = unit_is_rec & date_ok & hour_ok
        if self.fmt.date_from_marker:
            reasons[unit_is_rec & (y < 0)] = _NO_DATE_LINE
        reasons[unit_is_rec & ~rec_ok & (reasons == _OK)] = _INVALID_STAMP

        events = ~unit_is_rec
        if events.any():
            # A time-less event takes the previous message's time, but never a time before its day.
            before = carry.last_local if carry.last_local is not None else _NO_TIME
            prev = np.maximum.accumulate(np.concatenate([[before], np.where(rec_ok, local, _NO_TIME)]))[:-1]
            event_local = np.where(date_ok, np.maximum(prev, midnight), prev)
            local = np.where(events, event_local, local)
            reasons[events & (local == _NO_TIME)] = _EVENT_NO_TIME
        if rec_ok.any():
            carry.last_local = int(local[np.flatnonzero(rec_ok)[-1]])
        return local, reasons

    def _empty(self) -> ParseBatch:
        return empty_batch(self.ctx)
