"""Parser for the macOS PC export: a CSV of `Date,User,Message` (quoted fields may hold newlines).

Arrow's streaming CSV reader does the quoting and the batching; malformed rows come to
`invalid_row_handler` and go to quarantine. `line_no` here is the CSV record number (the header
row is record 1), because a quoted message may span several physical lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from parsers.arrays import bool_mask, int64_values, not_null_mask
from parsers.base import ParseBatch, ParseContext, build_messages, build_quarantine, local_to_utc
from parsers.errors import InputError
from parsers.kakao.detect import Encoding
from parsers.kakao.formats import CSV_EVENT_PATTERNS, CSV_SOURCE
from parsers.kakao.kinds import KIND_CODE, classify_kinds, kinds_to_arrow
from parsers.kakao.reader import Readable

_DATE_FORMATS: Final = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
_EVENTS: Final = "|".join(f"(?:{p})" for p in CSV_EVENT_PATTERNS)


class CsvExportParser:
    """Stream a Mac CSV export into ParseBatches."""

    def __init__(self, ctx: ParseContext, encoding: Encoding, block_bytes: int = 8 * 1024 * 1024) -> None:
        """Read `encoding` (Arrow transcodes anything but UTF-8), `block_bytes` at a time."""
        self.ctx = ctx
        self.encoding = encoding
        # Arrow needs a whole CSV row inside one block; a 1 MiB floor holds any real message.
        self.block_bytes = max(block_bytes, 1024 * 1024)

    def batches(self, stream: Readable) -> Iterator[ParseBatch]:
        """Yield one ParseBatch per CSV block."""
        skipped: list[tuple[int, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            skipped.append((int(row.number) if row.number is not None else -1, str(row.text)))
            return "skip"

        encoding = "utf8" if self.encoding.name == "utf-8" else self.encoding.name
        if self.encoding.bom and encoding != "utf8":
            stream.read(len(self.encoding.bom))
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    block_size=self.block_bytes,
                    use_threads=False,
                    encoding=encoding,
                    column_names=["date", "user", "message"],
                    skip_rows=1,
                ),
                parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(("date", "user", "message"), pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise InputError(self.ctx.source_file, f"unreadable CSV ({_first_line(exc)})") from None
        next_record = 2
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                raise InputError(self.ctx.source_file, f"unreadable CSV ({_first_line(exc)})") from None
            numbers = np.arange(next_record, next_record + batch.num_rows + len(skipped), dtype=np.int64)
            if skipped:
                numbers = numbers[~np.isin(numbers, [n for n, _ in skipped])]
                numbers = numbers[: batch.num_rows]
            next_record = int(numbers[-1]) + 1 if len(numbers) else next_record + len(skipped)
            quarantine = build_quarantine(
                self.ctx,
                [n for n, _ in skipped],
                ["malformed CSV row (expected Date,User,Message)"] * len(skipped),
                [text for _, text in skipped],
            )
            skipped.clear()
            yield self._parse(batch, numbers, quarantine)

    def _parse(self, batch: pa.RecordBatch, numbers: np.ndarray, quarantine: pa.Table) -> ParseBatch:
        date, user, message = (batch.column(i) for i in range(3))
        message = pc.replace_substring(message, "\r\n", "\n")
        local = pa.nulls(len(date), pa.timestamp("s"))
        for fmt in _DATE_FORMATS:
            parsed = pc.strptime(date, format=fmt, unit="s", error_is_null=True)
            local = pc.coalesce(local, parsed)
        ok = not_null_mask(local)
        if not ok.all():
            bad = np.flatnonzero(~ok)
            raw = pc.binary_join_element_wise(date, user, message, ",").take(pa.array(bad)).to_pylist()
            quarantine = pa.concat_tables(
                [
                    quarantine,
                    build_quarantine(
                        self.ctx, numbers[bad].tolist(), ["invalid date or time"] * len(bad), raw
                    ),
                ]
            )
        keep = pa.array(ok)
        user, message = user.filter(keep), message.filter(keep)
        seconds = int64_values(local.filter(keep).cast(pa.int64()), 0)
        is_event = bool_mask(pc.match_substring_regex(message, _EVENTS))
        kinds = classify_kinds(message)
        kinds[is_event] = KIND_CODE["system"]
        no_speaker = pc.or_(pc.equal(user, ""), pa.array(kinds == KIND_CODE["system"]))
        speaker = pc.if_else(no_speaker, pa.scalar(None, pa.string()), user)
        messages = build_messages(
            self.ctx,
            CSV_SOURCE,
            local_to_utc(seconds, self.ctx.timezone),
            speaker,
            message,
            kinds_to_arrow(kinds),
            numbers[ok],
        )
        return ParseBatch(messages, quarantine)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
