"""The fast reader of a backup: plain SMS vectorised, everything else through an XML parser.

The file is read in chunks of a few MB cut at a `<` (never inside a comment, CDATA section or
processing instruction). In each chunk the plain `<sms .../>` elements are found and read with
numpy (parsers/sms/scan.py); the other segments (`<mms>` with its parts, closing tags, anything
unusual or broken, a cut-off tail) are read, in file order, by ElementTree, with the rules of the
exact reader (parsers/sms/records.py), so they make the records the exact reader makes.

One pull parser has read the file's header and every segment not read here. It skips plain
elements only while settled, between elements at the root's level; after a segment it reads, it
also reads the next plain element itself and only then is known to be settled again (else it has
raised an error, or stays unsettled and reads on). A run of other segments that is whole XML
content on its own (elements closed, text valid: `ET.fromstring` reads it, wrapped) would leave a
settled parser settled, so it is read that way, in one call, and the pull parser skips it too.

So every record comes out in order, numbered, batched and quarantined exactly as the exact reader
does, and where the file stops being XML the rows end at the same record; the error's message is
then found again with its line and column (parsers/sms/where.py).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, cast

import numpy as np

from parsers.base import ParseBatch, ParseContext
from parsers.kakao.detect import Encoding
from parsers.sms.chunks import Chunk, Reader
from parsers.sms.columns import Batcher, Speakers
from parsers.sms.exact import parse_exact
from parsers.sms.records import cut_off, read_record, repair
from parsers.sms.scan import Fast, Keys, read_fast
from parsers.sms.source import open_utf8, progress
from parsers.sms.where import locate

#: Bytes read at a time (a chunk is cut at the last `<` in what has been read).
BLOCK: Final = 2 << 20
#: Plain elements in a run (between others) below which rows are made one at a time.
_RUN: Final = 128
_WS: Final = b" \t\r\n"
#: The XML declaration, comments, PIs and whitespace, then the root's start tag: read exactly.
_HEADER: Final = re.compile(
    rb"""(?:\xef\xbb\xbf)?
    (?P<decl><\?xml[ \t\r\n][^?<>]*\?>)?
    (?:[ \t\r\n]+ | <!--(?:[^-]|-[^-])*--> | <\?[A-Za-z_:][^?]*(?:\?(?!>)[^?]*)*\?>)*
    <smses(?:[ \t\r\n]+[A-Za-z_][A-Za-z0-9_.\-]*[ \t\r\n]*=[ \t\r\n]*(?:"[^"<]*"|'[^'<]*'))*[ \t\r\n]*>""",
    re.VERBOSE,
)
_ENCODING: Final = re.compile(rb"encoding[ \t\r\n]*=[ \t\r\n]*[\"']([^\"']*)[\"']")


def header_end(head: bytes) -> int | None:
    """Where the root's start tag ends, if the head is a plain UTF-8 backup's (else None)."""
    match = _HEADER.match(head)
    if match is None or b"xmlns" in match[0]:
        return None
    declaration = match["decl"]
    if declaration is not None:
        encoding = _ENCODING.search(declaration)
        if encoding is not None and encoding[1].lower() != b"utf-8":
            return None
    return match.end()


class _Exact:
    """One pull parser for the segments the fast path does not read; records go to `on_record`."""

    def __init__(self, on_record: Callable[[ET.Element], None]) -> None:
        self.parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
        self.on_record = on_record
        self.root: ET.Element | None = None
        self.depth = 0
        self.error: str | None = None

    def feed(self, raw: bytes, close: bool = False) -> None:
        """Parse more of the file; the first error (a closing one after any other) is kept."""
        try:
            self.parser.feed(repair(raw))
            if close:
                self.parser.close()
        except ET.ParseError as exc:
            self.error = str(exc)
        try:
            for event, element in cast(Iterator[tuple[str, ET.Element]], self.parser.read_events()):
                if event == "start":
                    self.root = element if self.root is None else self.root
                    self.depth += 1
                    continue
                self.depth -= 1
                if element.tag in ("sms", "mms"):
                    self.on_record(element)
                    if self.root is not None:
                        self.root.clear()
        except ET.ParseError as exc:
            self.error = str(exc)


class _Parse:
    """The state of one fast read: records so far, the exact parser, the rows' batches."""

    def __init__(
        self, path: Path, encoding: Encoding | None, ctx: ParseContext, batch: int, header: bytes
    ) -> None:
        self.path, self.encoding, self.ctx, self.header = path, encoding, ctx, header
        self.out = Batcher(ctx, batch)
        self.speakers = Speakers(ctx)
        self.keys = Keys()
        self.record = 0
        self.exact = _Exact(self._exact_record)
        self.exact.feed(header)
        self.settled = self.exact.depth == 1
        self.mark = len(header)  # the exact parser has read every byte from here on

    def _exact_record(self, element: ET.Element) -> None:
        self.record += 1
        read_record(element, self.record, self.ctx, self.speakers.names, self.out.rows, self.out.rejected)

    def chunk(self, chunk: Chunk) -> None:
        """Read the segments of one chunk, in order, each by the fast or the exact path."""
        fast = read_fast(chunk, self.keys)
        n = len(chunk)
        ok, rank = fast.ok.tolist(), (np.cumsum(fast.ok) - 1).tolist()
        next_slow, next_plain = _next(~fast.ok), _next(fast.ok)
        starts, ends = chunk.starts.tolist(), chunk.ends.tolist()
        i = 0
        while i < n and self.exact.error is None:
            if self.settled and ok[i]:
                j = next_slow[i]
                self._emit(fast, rank[i], rank[i] + j - i)
                self.mark = chunk.offset + (starts[j] if j < n else chunk.size)
                i = j
                continue
            k = next_plain[i]
            whole = _balanced(chunk.bytes(starts[i], ends[k - 1])) if self.settled and i < k else None
            if whole is not None:  # the parser would end where it started: it need not read these
                for element in whole:
                    self._exact_record(element)
                self.mark = chunk.offset + ends[k - 1]
                i = k
                continue
            stop = min(k, n - 1)
            self.exact.feed(chunk.bytes(starts[i], ends[stop]))
            self.settled = k < n and self.exact.depth == 1
            i = stop + 1

    def _emit(self, fast: Fast, lo: int, hi: int) -> None:
        """Rows of the plain elements [lo, hi) of the chunk's fast ones (a short run one at a time)."""
        date, mine = fast.date[lo:hi], fast.mine[lo:hi]
        address, contact, body = (
            fast.address.slice(lo, hi),
            fast.contact.slice(lo, hi),
            fast.body.slice(lo, hi - lo),
        )
        if hi - lo < _RUN:
            self.speakers.rows(date, mine, address, contact, body.to_pylist(), self.record + 1, self.out.rows)
        else:
            self.out.add(self.speakers.columns(date, mine, address, contact, body, self.record + 1))
        self.record += hi - lo

    def finish(self) -> ParseBatch:
        """Close the parser; a file that stops being XML gets its reason, after the last record."""
        if self.exact.error is None:
            self.exact.feed(b"", close=True)
        if self.exact.error is not None:
            detail = locate(self.path, self.header, self.mark, self.encoding) or self.exact.error
            self.out.rejected[0].append(self.record + 1)
            self.out.rejected[1].append(cut_off(detail))
            self.out.rejected[2].append("")
        return self.out.last()


def _balanced(segments: bytes) -> list[ET.Element] | None:
    """The records of `segments` in the order their end tags come, if they are whole XML content.

    Whole: elements closed, text and references valid; a parser between elements would be there
    again after them. Else None.
    """
    try:
        wrapper = ET.fromstring(b"<r>" + repair(segments) + b"</r>")
    except ET.ParseError:
        return None
    records: list[ET.Element] = []
    for child in wrapper:
        _ended(child, records)
    return records


def _ended(element: ET.Element, records: list[ET.Element]) -> None:
    """The `<sms>` and `<mms>` in `element` (itself included) in the order their end tags come."""
    for child in element:
        _ended(child, records)
    if element.tag in ("sms", "mms"):
        records.append(element)


def _next(marked: np.ndarray) -> list[int]:
    """For each index, the first marked index at or after it (the length: none)."""
    n = len(marked)
    index = np.where(marked, np.arange(n), n)
    return np.minimum.accumulate(index[::-1])[::-1].tolist() if n else []


def parse_fast(
    path: Path,
    ctx: ParseContext,
    on_progress: Callable[[int], None] | None,
    batch: int,
    encoding: Encoding | None = None,
) -> Iterator[ParseBatch]:
    """Messages (each with its thread's conversation id) and quarantined records, in batches.

    A file in another encoding than UTF-8 is read transcoded (parsers/sms/source.py).
    """
    with open_utf8(path, encoding) as stream:
        head = stream.read(BLOCK)
        end = header_end(head)
        if end is None:  # an unusual head (another declared encoding, a DTD, namespaces): all exact
            yield from parse_exact(path, ctx, on_progress, batch, encoding)
            return
        on_progress = progress(stream, on_progress)
        if on_progress is not None and head:
            on_progress(len(head))
        parse = _Parse(path, encoding, ctx, batch, head[:end])
        rest = head[end:].lstrip(_WS)  # whitespace between elements: nothing to read
        for chunk in Reader(stream, rest, len(head) - len(rest), BLOCK, on_progress).chunks():
            parse.chunk(chunk)
            yield from parse.out.full()
            if parse.exact.error is not None:
                break
    yield parse.finish()
