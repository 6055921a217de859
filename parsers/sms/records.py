"""What one SMS or MMS element of a backup becomes: the rules both readers share.

- `date` is milliseconds since the epoch (an instant: no zone to guess);
- the owner's own messages are `type` 2 (sent), 3 (draft), 4 (outbox), 5 (failed) and 6 (queued)
  for SMS, `msg_box` 2 to 5 (the same, no queue) for MMS; they are spoken by `SELF` ("나"), everyone
  else by their contact name (learnt from any `<sms>`, and from a 1:1 `<mms>`, that carries one),
  else by a stable handle
  (`번호 1a2b3c`, from the number and the owner), never the number: a number is personal data and
  a speaker name travels into derived stores (the search index, lineage);
- one conversation per thread, keyed by the other side's number(s) (several in a group MMS);
- emoji are written as XML character references of UTF-16 surrogate halves (`&#55357;&#56832;`),
  which strict XML parsers refuse: they are joined into the real character before parsing (an
  unpaired half becomes U+FFFD).
"""

from __future__ import annotations

import functools
import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from parsers.base import (
    END_SECOND,
    FIRST_SECOND,
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
#: Contact names that name no one.
UNKNOWN = ("", "(Unknown)", "null")
#: SMS `type`s of the owner's own messages: sent, draft, outbox, failed, queued.
MINE = ("2", "3", "4", "5", "6")
#: MMS `msg_box`es of the owner's own messages: sent, draft, outbox, failed.
MINE_MMS = ("2", "3", "4", "5")
_REFERENCE = re.compile(rb"&#(\d{5});")
_KINDS = (("image/", "photo"), ("video/", "video"), ("audio/", "voice"), ("text/x-vcard", "contact"),
          ("text/vcard", "contact"))  # fmt: skip
_FROM = "137"
NO_DATE = "no valid date attribute (milliseconds since 1970)"
DATE_OUT_OF_RANGE = "date out of range (before 1970 or from 2200)"


def cut_off(detail: str) -> str:
    """The quarantine reason of a backup that stops being XML at some point."""
    if detail.startswith("no element found"):
        # The file ends inside the backup. Expat's position of its end depends on how the bytes
        # were fed (a last lone CR is held back for a LF that may follow), so it is not given.
        detail = "the file ends before the backup is closed"
    return f"the backup is cut off or broken here ({detail}); what came before it was kept"


def repair(block: bytes) -> bytes:
    """Character references of surrogate halves joined into real characters (XML-legal again).

    A high half followed at once by a low half is one character; any other half is U+FFFD.
    """
    if b"&#5" not in block:  # a half is 55296 to 57343
        return block
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


def thread_id(owner_id: str, addresses: list[str]) -> str:
    """The conversation of a thread: the other side's numbers, normalised, within the owner."""
    return _thread_id(owner_id, tuple(addresses))


@functools.lru_cache(maxsize=1 << 16)
def _thread_id(owner_id: str, addresses: tuple[str, ...]) -> str:
    numbers = sorted({re.sub(r"[^\d+]", "", a) or a for a in addresses if a})
    return "sms-" + hashlib.sha256(f"{owner_id}|{'|'.join(numbers)}".encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1 << 16)
def handle(owner_id: str, number: str) -> str:
    """`parsers.base.number_handle`, remembered: the same few numbers come back all through a file."""
    return number_handle(owner_id, number)


#: A message: milliseconds, speaker, text, kind, record number, thread.
Row = tuple[int, str, str, str, int, str]


@dataclass
class Rows:
    """Messages read one element at a time."""

    items: list[Row] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, ts_ms: int, speaker: str, text: str, kind: str, record: int, thread: str) -> None:
        """One message more."""
        self.items.append((ts_ms, speaker, text, kind, record, thread))

    def columns(self) -> tuple[list[int], list[str], list[str], list[str], list[int], list[str]]:
        """The messages as columns."""
        if not self.items:
            return [], [], [], [], [], []
        ts_ms, speaker, text, kind, record, thread = map(list, zip(*self.items, strict=True))
        return ts_ms, speaker, text, kind, record, thread


#: Quarantined records: their numbers, reasons and raw text.
Rejections = tuple[list[int], list[str], list[str]]


def rejections() -> Rejections:
    """No quarantined records yet."""
    return [], [], []


def read_record(
    element: ET.Element,
    record: int,
    ctx: ParseContext,
    names: dict[str, str],
    rows: Rows,
    rejected: Rejections,
) -> None:
    """One `<sms>` or `<mms>` element into `rows`, or `rejected`; `names` learns its contact name."""
    attrs = element.attrib
    try:
        ts_ms = int(attrs["date"])
    except (KeyError, ValueError):
        ts_ms = None
    if ts_ms is None or not FIRST_SECOND * 1000 <= ts_ms < END_SECOND * 1000:
        rejected[0].append(record)
        rejected[1].append(NO_DATE if ts_ms is None else DATE_OUT_OF_RANGE)
        rejected[2].append(_raw(element))
        return
    address = attrs.get("address", "")
    contact = attrs.get("contact_name", "")
    named = contact not in UNKNOWN and "," not in contact  # a comma: a group's list of names
    if element.tag == "sms":
        if named:
            names[address] = contact
        mine = attrs.get("type") in MINE
        speaker = SELF if mine else names.get(address) or handle(ctx.owner_id, address)
        rows.add(ts_ms, speaker, attrs.get("body", ""), "text", record, thread_id(ctx.owner_id, [address]))
        return
    if named and "~" not in address:  # a 1:1 thread's contact (a group's numbers are joined by "~")
        names[address] = contact
    addrs = [(a.get("address", ""), a.get("type", "")) for a in element.iter("addr")]
    mine = attrs.get("msg_box") in MINE_MMS
    sender = next((a for a, kind in addrs if kind == _FROM), address)
    speaker = SELF if mine else names.get(sender) or handle(ctx.owner_id, sender)
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


def _raw(element: ET.Element) -> str:
    """The element as text, without the text after it (the parser may not have read it yet)."""
    tail, element.tail = element.tail, None
    try:
        return ET.tostring(element, encoding="unicode")[:2000]
    finally:
        element.tail = tail


def rows_batch(rows: Rows, rejected: Rejections, ctx: ParseContext) -> ParseBatch:
    """A batch of the rows and rejections read one element at a time."""
    ts_ms, speaker, text, kind, record, thread = rows.columns()
    table = build_messages(
        ctx,
        SOURCE,
        instants_ms(ts_ms),
        pa.array(speaker, pa.string()),
        pa.array(text, pa.string()),
        pa.array(kind, pa.string()),
        np.array(record, dtype=np.int64),
    )
    return ParseBatch(with_conversations(table, thread), build_quarantine(ctx, *rejected))
