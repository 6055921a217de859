"""Rows of the fast reader as Arrow columns, and batches cut where the exact reader cuts them.

Speakers are resolved for a run of plain SMS at once: each row takes the latest usable contact
name of its number at or before it (within the run, else from the names learnt before it), else
the number's handle; the owner's messages are `SELF`. Handles and thread ids are computed once
per distinct number.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from parsers.base import ParseBatch, ParseContext
from parsers.sms import arrow
from parsers.sms.records import SELF, SOURCE, UNKNOWN, Rejections, Rows, handle, rejections, thread_id
from parsers.sms.values import Coded


@dataclass
class Columns:
    """Messages as columns."""

    ts_ms: np.ndarray
    speaker: pa.Array
    text: pa.Array
    kind: pa.Array
    record: np.ndarray
    thread: pa.Array

    def table(self, ctx: ParseContext) -> pa.Table:
        """The messages as a table."""
        return arrow.messages(
            ctx, SOURCE, self.ts_ms, self.speaker, self.text, self.kind, self.record, self.thread
        )


def _from_rows(rows: Rows) -> Columns:
    ts_ms, speaker, text, kind, record, thread = rows.columns()
    speakers, texts, kinds, threads = (arrow.texts(column) for column in (speaker, text, kind, thread))
    return Columns(np.array(ts_ms, np.int64), speakers, texts, kinds, np.array(record, np.int64), threads)


@dataclass
class _Part:
    table: pa.Table
    record: np.ndarray


@dataclass
class Batcher:
    """Rows and rejections in record order, yielded in batches of `size` messages.

    A batch's table is its parts' tables put together without a copy (its columns chunked).
    """

    ctx: ParseContext
    size: int
    #: Rows of the exact reader, not yet columns.
    rows: Rows = field(default_factory=Rows)
    rejected: Rejections = field(default_factory=rejections)
    parts: list[_Part] = field(default_factory=list)
    count: int = 0

    def add(self, columns: Columns) -> None:
        """Rows of the fast reader, after every row read so far."""
        self._settle()
        self.parts.append(_Part(columns.table(self.ctx), columns.record))
        self.count += len(columns.record)

    def full(self) -> list[ParseBatch]:
        """The full batches ready."""
        out = []
        while self.count + len(self.rows) >= self.size:
            self._settle()
            table, last = self._take(self.size)
            out.append(ParseBatch(table, self._rejections(last)))
        return out

    def last(self) -> ParseBatch:
        """The rest (always one batch, maybe empty)."""
        self._settle()
        if not self.parts:
            self.parts.append(_Part(_from_rows(Rows()).table(self.ctx), np.zeros(0, np.int64)))
        return ParseBatch(self._take(self.count)[0], self._rejections(None))

    def _settle(self) -> None:
        if len(self.rows):
            columns = _from_rows(self.rows)
            self.parts.append(_Part(columns.table(self.ctx), columns.record))
            self.count += len(columns.record)
            self.rows = Rows()

    def _take(self, n: int) -> tuple[pa.Table, int]:
        """The first `n` rows as a table (from the first part at least), and the last one's record."""
        tables: list[pa.Table] = []
        last = 0
        while n or not tables:
            part = self.parts[0]
            cut = min(n, len(part.record))
            tables.append(part.table.slice(0, cut))
            last = int(part.record[cut - 1]) if cut else last
            if cut < len(part.record):
                self.parts[0] = _Part(part.table.slice(cut), part.record[cut:])
            else:
                self.parts.pop(0)
            n, self.count = n - cut, self.count - cut
        return pa.concat_tables(tables), last

    def _rejections(self, last: int | None) -> pa.Table:
        """The rejections up to record `last` (all: None)."""
        numbers, reasons, raw = self.rejected
        cut = len(numbers) if last is None else bisect.bisect(numbers, last)
        self.rejected = numbers[cut:], reasons[cut:], raw[cut:]
        return arrow.quarantine(self.ctx, numbers[:cut], reasons[:cut], raw[:cut])


@dataclass
class Speakers:
    """Who speaks plain SMS, and in which thread, with what the file taught so far."""

    ctx: ParseContext
    names: dict[str, str] = field(default_factory=dict)

    def columns(
        self, date: np.ndarray, mine: np.ndarray, address: Coded, contact: Coded, body: pa.Array, first: int
    ) -> Columns:
        """Rows of a run of plain SMS in file order, from record `first`; `names` learns their names."""
        n, numbers, names, owner = len(date), address.values, contact.values, self.ctx.owner_id
        usable = np.array([name not in UNKNOWN and "," not in name for name in names], bool)[contact.codes]
        latest = _latest(address.codes, usable)
        fallback = [self.names.get(number) or handle(owner, number) for number in numbers]
        for code, row in _last_per_code(address.codes, latest).items():
            self.names[numbers[code]] = names[contact.codes[row]]
        index = np.where(
            mine,
            len(names) + len(numbers),
            np.where(latest >= 0, contact.codes[latest], len(names) + address.codes),
        )
        choices = arrow.texts(names + fallback + [SELF])
        threads = arrow.texts([thread_id(owner, [number]) for number in numbers])
        speaker, thread = choices.take(arrow.integers(index)), threads.take(arrow.integers(address.codes))
        kind = arrow.repeated("text", n)
        return Columns(date, speaker, body, kind, first + np.arange(n, dtype=np.int64), thread)

    def rows(
        self,
        date: np.ndarray,
        mine: np.ndarray,
        address: Coded,
        contact: Coded,
        body: list[str],
        first: int,
        rows: Rows,
    ) -> None:
        """A short run of plain SMS into `rows`, one at a time (as `records.read_record` reads `<sms>`)."""
        owner = self.ctx.owner_id
        for k, text in enumerate(body):
            number, name = address.values[address.codes[k]], contact.values[contact.codes[k]]
            if name not in UNKNOWN and "," not in name:
                self.names[number] = name
            speaker = SELF if mine[k] else self.names.get(number) or handle(owner, number)
            rows.add(int(date[k]), speaker, text, "text", first + k, thread_id(owner, [number]))


def _latest(codes: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """For each row, the last row at or before it with the same code and a usable name (-1: none)."""
    n = len(codes)
    if usable.all():  # every row names its own speaker
        return np.arange(n, dtype=np.int64)
    if not usable.any():
        return np.full(n, -1, np.int64)
    order = np.argsort(codes, kind="stable")
    base = codes[order] * (n + 1)
    running = np.maximum.accumulate(base + np.where(usable[order], order + 1, 0)) if n else base
    latest = np.empty(n, np.int64)
    latest[order] = np.where(running >= base + 1, running - base - 1, -1)
    return latest


def _last_per_code(codes: np.ndarray, latest: np.ndarray) -> dict[int, int]:
    """Per code with a usable name in the run: the row of its last one."""
    if not len(codes):
        return {}
    last_row = np.full(int(codes.max()) + 1, -1, np.int64)
    last_row[codes] = np.arange(len(codes))  # the last assignment wins: each code's last row
    found = latest[last_row[last_row >= 0]]
    codes_seen = np.flatnonzero(last_row >= 0)
    return {int(c): int(r) for c, r in zip(codes_seen, found, strict=True) if r >= 0}
