"""The exact reader of a backup: the whole file through an XML pull parser, element by element.

Streamed, each element cleared once read, so memory stays flat. It reads every backup the XML
rules allow; the fast reader (parsers/sms/fast.py) hands it whatever it does not read itself and
must agree with it on every file (tests/test_sms.py runs both).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

from parsers.base import ParseBatch, ParseContext
from parsers.kakao.detect import Encoding
from parsers.sms.records import Rows, cut_off, read_record, rejections, repair, rows_batch
from parsers.sms.source import open_utf8, progress

BLOCK = 1 << 20


def parse_exact(
    path: Path,
    ctx: ParseContext,
    on_progress: Callable[[int], None] | None,
    batch: int,
    encoding: Encoding | None = None,
) -> Iterator[ParseBatch]:
    """Messages (each with its thread's conversation id) and quarantined records, in batches.

    A file in another encoding than UTF-8 is read transcoded (parsers/sms/source.py).
    """
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    root: ET.Element | None = None
    rows, rejected = Rows(), rejections()
    names: dict[str, str] = {}
    record = 0
    carry = b""
    failed: str | None = None
    with open_utf8(path, encoding) as stream:
        on_progress = progress(stream, on_progress)
        while failed is None:
            block = stream.read(BLOCK)
            if on_progress is not None and block:
                on_progress(len(block))
            data = carry + block
            # References never span a '>' (one inside a value is written &gt;): cut after the last one.
            cut = data.rfind(b">") + 1 if block else len(data)
            carry, data = data[cut:], data[:cut]
            try:
                parser.feed(repair(data))
                if not block:
                    parser.close()
            except ET.ParseError as exc:
                failed = cut_off(str(exc))
            try:
                for event, element in cast(Iterator[tuple[str, ET.Element]], parser.read_events()):
                    if event == "start":
                        root = element if root is None else root
                        continue
                    if element.tag not in ("sms", "mms"):
                        continue
                    record += 1
                    read_record(element, record, ctx, names, rows, rejected)
                    if root is not None:
                        root.clear()  # every record read so far: memory stays flat
                    if len(rows) >= batch:
                        yield rows_batch(rows, rejected, ctx)
                        rows, rejected = Rows(), rejections()
            except ET.ParseError as exc:  # broken mid-file: the first error in the stream
                failed = cut_off(str(exc))
            if not block:
                break
    if failed is not None:
        rejected[0].append(record + 1)
        rejected[1].append(failed)
        rejected[2].append("")
    yield rows_batch(rows, rejected, ctx)
