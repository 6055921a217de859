"""Android SMS/MMS backups ("SMS Backup & Restore" XML) as canonical Messages, streamed.

The file is `<smses count="N">` holding `<sms address date type body contact_name .../>` and
`<mms date msg_box address contact_name ...><parts><part ct text .../></parts><addrs><addr
address type/></addrs></mms>` (the app's documentation and public parsers' code):
- `date` is milliseconds since the epoch (an instant: no zone to guess);
- the owner's own messages are `type` 2 (sent), 3 (draft), 4 (outbox), 5 (failed) and 6 (queued)
  for SMS, `msg_box` 2 for MMS; they are spoken by `SELF` ("나"), everyone else by their contact
  name (learnt from any `<sms>`, and from a 1:1 `<mms>`, that carries one), else by a stable handle
  (`번호 1a2b3c`, from the number and the owner), never the number: a number is personal data and
  a speaker name travels into derived stores (the search index, lineage);
- one conversation per thread, keyed by the other side's number(s) (several in a group MMS);
- emoji are written as XML character references of UTF-16 surrogate halves (`&#55357;&#56832;`),
  which strict XML parsers refuse: they are joined into the real character before parsing (an
  unpaired half becomes U+FFFD);
- a backup cut off mid-message (or broken mid-file) parses what is whole and quarantines the rest
  with its reason;
- a backup saved again in another encoding (UTF-16, EUC-KR, Windows-1252), its declaration often
  still saying UTF-8, is read in the encoding detected from its content, transcoded to UTF-8 as it
  is read (parsers/sms/source.py).

Read in chunks of a few MB: the plain `<sms .../>` elements (nearly all of a backup) with numpy,
everything else through an XML pull parser (parsers/sms/fast.py), with each element cleared once
read: a 500 MB backup in flat memory. `fast=False` reads the whole file through the pull parser
(parsers/sms/exact.py), the reference the fast reader is tested against. Detected from content
(`<smses`), never from the file name. Nothing here imports Prefect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from parsers.base import ParseBatch, ParseContext
from parsers.kakao.detect import Encoding
from parsers.sms.exact import parse_exact
from parsers.sms.fast import parse_fast
from parsers.sms.records import SELF, SOURCE, repair, thread_id

__all__ = ["SELF", "SOURCE", "parse_backup", "repair", "sniff", "thread_id"]

_BATCH = 20_000


def sniff(sample: str) -> bool:
    """Whether the head of a text is an SMS Backup & Restore file."""
    return "<smses" in sample[:4096]


def parse_backup(
    path: Path,
    ctx: ParseContext,
    on_progress: Callable[[int], None] | None = None,
    batch: int = _BATCH,
    fast: bool = True,
    encoding: Encoding | None = None,
) -> Iterator[ParseBatch]:
    """Messages (each with its thread's conversation id) and quarantined records, in batches.

    `encoding` is the one detected from the file's content (`parsers.exports.inspect_export`): a
    file saved again in another one than UTF-8 is read transcoded, whatever its declaration says
    (parsers/sms/source.py). None: the file's bytes as they are.
    """
    if fast:
        return parse_fast(path, ctx, on_progress, batch, encoding)
    return parse_exact(path, ctx, on_progress, batch, encoding)
