"""Android SMS/MMS backups ("SMS Backup & Restore" XML) as canonical Messages, streamed.

The file is `<smses count="N">` holding `<sms address date type body contact_name .../>` and
`<mms date msg_box address contact_name ...><parts><part ct text .../></parts><addrs><addr
address type/></addrs></mms>` (the app's documentation and public parsers' code):
- `date` is milliseconds since the epoch (an instant: no zone to guess);
- the owner's own messages are `type` 2 (sent) for SMS, `msg_box` 2 for MMS; they are spoken by
  `SELF` ("나"), everyone else by their contact name, else by a stable handle (`번호 1a2b3c`, from
  the number and the owner), never the number: a number is personal data and a speaker name
  travels into derived stores (the search index, lineage);
- one conversation per thread, keyed by the other side's number(s) (several in a group MMS);
- emoji are written as XML character references of UTF-16 surrogate halves (`&#55357;&#56832;`),
  which strict XML parsers refuse: they are joined into the real character before parsing (an
  unpaired half becomes U+FFFD);
- a backup cut off mid-message parses what is whole and quarantines the rest with its reason.

Streamed with a pull parser and each element cleared once read: a 500 MB backup in flat memory.
Detected from content (`<smses`), never from the file name. Nothing here imports Prefect.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa

from parsers.base import (
    ParseBatch,
    ParseContext,
    build_messages,
    build_quarantine,
    instants_ms,
    number_handle,
    with_conversations,
)

SOURCE = "android_sms_xml"
SELF = "나"
_BATCH = 20_000
_BLOCK = 1 << 20
_REFERENCE = re.compile(rb"&#(\d{5});")
_UNKNOWN = ("", "(Unknown)", "null")
_KINDS = (("image/", "photo"), ("video/", "video"), ("audio/", "voice"), ("text/x-vcard", "contact"),
          ("text/vcard", "contact"))  # fmt: skip
_FROM, _TO = "137", "151"


def sniff(sample: str) -> bool:
    """Whether the head of a text is an SMS Backup & Restore file."""
    return "<smses" in sample[:4096]


def repair(block: bytes) -> bytes:
    """Character references of surrogate halves joined into real characters (XML-legal again).

    A high half followed at once by a low half is one character; any other half is U+FFFD.
    """
    out, last, pending = [], 0, None  # pending: (start, value) of a high half not yet paired
    for match in _REFERENCE.finditer(block):
        value = int(match[1])
        if not 0xD800 <= value <= 0xDFFF:
            continue
        if pending is not None and value >= 0xDC00 and match.start() == pending[2]:
            code = 0x10000 + ((pending[1] - 0xD800) << 10) + (value - 0xDC00)
            out += [block[last : pending[0]], b"&#%d;" % code]
            last, pending = match.end(), None
            continue
        if pending is not None:
            out += [block[last : pending[0]], b"&#65533;"]
            last = pending[2]
            pending = None
        if value <= 0xDBFF:
            pending = (match.start(), value, match.end())
        else:
            out += [block[last : match.start()], b"&#65533;"]
            last = match.end()
    if pending is not None:
        out += [block[last : pending[0]], b"&#65533;"]
        last = pending[2]
    out.append(block[last:])
    return b"".join(out)


@dataclass
class _Rows:
    ts_ms: list[int] = field(default_factory=list)
    speaker: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    record: list[int] = field(default_factory=list)
    thread: list[str] = field(default_factory=list)

    def add(self, ts_ms: int, speaker: str, text: str, kind: str, record: int, thread: str) -> None:
        self.ts_ms.append(ts_ms)
        self.speaker.append(speaker)
        self.text.append(text)
        self.kind.append(kind)
        self.record.append(record)
        self.thread.append(thread)


def thread_id(owner_id: str, addresses: list[str]) -> str:
    """The conversation of a thread: the other side's numbers, normalised, within the owner."""
    numbers = sorted({re.sub(r"[^\d+]", "", a) or a for a in addresses if a})
    return "sms-" + hashlib.sha256(f"{owner_id}|{'|'.join(numbers)}".encode()).hexdigest()[:16]


def parse_backup(
    path: Path, ctx: ParseContext, on_progress: Callable[[int], None] | None = None, batch: int = _BATCH
) -> Iterator[ParseBatch]:
    """Messages (each with its thread's conversation id) and quarantined records, in batches."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    root: ET.Element | None = None
    rows, rejected = _Rows(), _rejections()
    names: dict[str, str] = {}
    record = 0
    carry = b""
    failed: str | None = None
    with path.open("rb") as stream:
        while failed is None:
            block = stream.read(_BLOCK)
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
                failed = f"the backup is cut off or broken here ({exc}); what came before it was kept"
            events = cast(Iterator[tuple[str, ET.Element]], parser.read_events())
            for event, element in events:
                if event == "start":
                    root = element if root is None else root
                    continue
                if element.tag not in ("sms", "mms"):
                    continue
                record += 1
                _record(element, record, ctx, names, rows, rejected)
                if root is not None:
                    root.clear()  # every record read so far: memory stays flat
                if len(rows.ts_ms) >= batch:
                    yield _batch(rows, rejected, ctx)
                    rows, rejected = _Rows(), _rejections()
            if not block:
                break
    if failed is not None:
        rejected[0].append(record + 1)
        rejected[1].append(failed)
        rejected[2].append("")
    yield _batch(rows, rejected, ctx)


Rejections = tuple[list[int], list[str], list[str]]


def _rejections() -> Rejections:
    return [], [], []


def _record(
    element: ET.Element,
    record: int,
    ctx: ParseContext,
    names: dict[str, str],
    rows: _Rows,
    rejected: Rejections,
) -> None:
    attrs = element.attrib
    try:
        ts_ms = int(attrs["date"])
    except (KeyError, ValueError):
        rejected[0].append(record)
        rejected[1].append("no valid date attribute (milliseconds since 1970)")
        rejected[2].append(ET.tostring(element, encoding="unicode")[:2000])
        return
    address = attrs.get("address", "")
    contact = attrs.get("contact_name", "")
    if element.tag == "sms":
        if contact not in _UNKNOWN and "," not in contact:
            names[address] = contact
        mine = attrs.get("type") == "2"
        speaker = SELF if mine else names.get(address) or number_handle(ctx.owner_id, address)
        rows.add(ts_ms, speaker, attrs.get("body", ""), "text", record, thread_id(ctx.owner_id, [address]))
        return
    addrs = [(a.get("address", ""), a.get("type", "")) for a in element.iter("addr")]
    mine = attrs.get("msg_box") == "2"
    sender = next((a for a, kind in addrs if kind == _FROM), address)
    speaker = SELF if mine else names.get(sender) or number_handle(ctx.owner_id, sender)
    texts, kind = [], "text"
    for part in element.iter("part"):
        content = part.get("ct", "")
        if content == "text/plain" and part.get("text") not in (None, "null"):
            texts.append(part.get("text", ""))
        elif content != "application/smil" and kind == "text":
            kind = next((k for prefix, k in _KINDS if content.lower().startswith(prefix)), "file")
    text = "\n".join(texts) if texts else f"[{kind}]"
    # The thread is the `address` the app writes (a group's numbers joined by "~").
    thread = thread_id(ctx.owner_id, address.split("~"))
    rows.add(ts_ms, speaker, text, "text" if texts else kind, record, thread)


def _batch(rows: _Rows, rejected: Rejections, ctx: ParseContext) -> ParseBatch:
    table = build_messages(
        ctx,
        SOURCE,
        instants_ms(rows.ts_ms),
        pa.array(rows.speaker, pa.string()),
        pa.array(rows.text, pa.string()),
        pa.array(rows.kind, pa.string()),
        np.array(rows.record, dtype=np.int64),
    )
    return ParseBatch(with_conversations(table, rows.thread), build_quarantine(ctx, *rejected))
