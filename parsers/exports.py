"""One entry for every chat export: detect its source from content, then stream its batches.

Sources: KakaoTalk (parsers/kakao/), WhatsApp (parsers/whatsapp/), Android SMS backups
(parsers/sms/), Telegram Desktop's JSON and HTML (parsers/telegram/), LINE (parsers/line/), Messenger
and Instagram (parsers/messenger/). Never decided by the file name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from parsers.base import ParseBatch, ParseContext
from parsers.errors import InputError
from parsers.kakao.detect import SAMPLE_BYTES, Detection, Encoding, detect_encoding, detect_format
from parsers.kakao.export import ZIP_MAGIC, check_readable, file_sha256, kakao_batches
from parsers.kakao.formats import CSV_FORMAT_NAME, CSV_SOURCE, FORMATS_BY_NAME
from parsers.kakao.reader import CHUNK_BYTES
from parsers.line import export as line_chat
from parsers.messenger import export as messenger
from parsers.sms import export as sms
from parsers.telegram import export as telegram
from parsers.telegram import html_export as telegram_html
from parsers.textlines import file_chunks
from parsers.whatsapp import export as whatsapp

#: `--format` names of the other sources (KakaoTalk's are its variants, parsers/kakao/formats.py).
WHATSAPP = "whatsapp"
SMS = "sms"
TELEGRAM = "telegram"
MESSENGER = "messenger"
LINE = "line"
#: The `format_name` of Telegram Desktop's HTML pages (family `telegram`, like its JSON).
TELEGRAM_HTML = "telegram_html"
DATE_ORDERS = ("dmy", "mdy", "ymd")
READ = "KakaoTalk, WhatsApp, SMS backups, Telegram, LINE, Messenger and Instagram"
#: Telegram Desktop's HTML pages are read (`telegram_html`); Facebook's and Instagram's HTML is not.
_HTML = (
    "is a web page (an HTML export) but not a Telegram chat page; Facebook and Instagram HTML exports "
    "are not read: export the chat again as JSON (Format 'JSON')"
)


@dataclass(frozen=True)
class ExportInfo:
    """What was learnt about an export before parsing it."""

    path: Path
    display_name: str
    size: int
    sha256: str
    encoding: Encoding
    detection: Detection
    #: A WhatsApp export's layout, date order and senders (read from the whole file).
    whatsapp: whatsapp.WhatsAppDetection | None = None
    #: The app the export came from: `kakao`, `whatsapp` or `sms`.
    family: str = "kakao"

    @property
    def format_name(self) -> str:
        """The detected variant, e.g. `android_ko`, `mac_csv` or `whatsapp`."""
        return self.detection.format_name

    @property
    def source(self) -> str:
        """The Message `source` value for this variant."""
        if self.family == SMS:
            return sms.SOURCE
        if self.family == TELEGRAM:
            return telegram_html.SOURCE if self.format_name == TELEGRAM_HTML else telegram.SOURCE
        if self.family == MESSENGER:
            return messenger.SOURCE
        if self.family == LINE:
            return line_chat.SOURCE
        if self.whatsapp is not None:
            return whatsapp.SOURCE
        if self.format_name == CSV_FORMAT_NAME:
            return CSV_SOURCE
        return FORMATS_BY_NAME[self.format_name].source

    @property
    def conversations_in_rows(self) -> bool:
        """Whether each row carries its own conversation (a backup of many threads), not the file."""
        return self.family in (SMS, TELEGRAM, MESSENGER)

    @property
    def conversation_id(self) -> str:
        """Stable id of the chat room: from its title when the export names it, else from the file."""
        if self.detection.room:
            return f"{self.family}-" + hashlib.sha256(self.detection.room.encode("utf-8")).hexdigest()[:16]
        return f"{self.family}-file-" + self.sha256[:16]


def inspect_export(
    path: Path,
    forced_format: str | None = None,
    display_name: str | None = None,
    sha256: str | None = None,
    date_order: str | None = None,
) -> ExportInfo:
    """Detect encoding, source and variant from the file's content, and hash the whole file.

    `date_order` (`dmy`, `mdy`, `ymd`) overrides what a WhatsApp export's dates are read as.
    """
    name = display_name or str(path)
    check_readable(path, name)
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    if head.startswith(ZIP_MAGIC):
        raise InputError(name, "is a zip archive; its chat file must be extracted first")
    encoding = detect_encoding(head, name)
    sample = head[len(encoding.bom) :].decode(encoding.name, errors="replace")
    known = (*FORMATS_BY_NAME, CSV_FORMAT_NAME, WHATSAPP, SMS, TELEGRAM, MESSENGER, LINE)
    if forced_format is not None and forced_format not in known:
        raise InputError(name, f"unknown format {forced_format!r} (one of {', '.join(known)})")
    if date_order is not None and date_order not in DATE_ORDERS:
        raise InputError(name, f"unknown date order {date_order!r} (one of {', '.join(DATE_ORDERS)})")
    digest = sha256 or file_sha256(path)
    if forced_format in (None, TELEGRAM) and telegram_html.sniff(sample):
        detection = Detection(TELEGRAM_HTML, None, False)
        return ExportInfo(path, name, path.stat().st_size, digest, encoding, detection, family=TELEGRAM)
    for family, sniff in ((SMS, sms.sniff), (TELEGRAM, telegram.sniff), (MESSENGER, messenger.sniff)):
        if forced_format == family or (forced_format is None and sniff(sample)):
            detection = Detection(family, None, False)
            return ExportInfo(path, name, path.stat().st_size, digest, encoding, detection, family=family)
    if forced_format == LINE or (forced_format is None and line_chat.sniff(sample)):
        title = (
            sample.lstrip("\ufeff").splitlines()[0].removeprefix("[LINE]").strip() if sample.strip() else ""
        )
        detection = Detection(LINE, title or None, False)
        return ExportInfo(path, name, path.stat().st_size, digest, encoding, detection, family=LINE)
    if forced_format == WHATSAPP or (forced_format is None and whatsapp.sniff(sample)):
        found = whatsapp.detect_chunks(file_chunks(path, encoding), forced_order=date_order)
        if found is None:
            raise InputError(
                name, "not a recognised WhatsApp export (no line like '12/31/21, 11:59 PM - Name: text')"
            )
        detection = Detection(WHATSAPP, None, False)
        return ExportInfo(path, name, path.stat().st_size, digest, encoding, detection, found, WHATSAPP)
    opening = sample.lstrip("\ufeff \r\n\t")[:15].lower()
    if forced_format is None and opening.startswith(("<!doctype html", "<html")):
        raise InputError(name, _HTML)
    try:
        detection = detect_format(sample, name, forced_format)
    except InputError as exc:
        cause = exc.cause
        if cause.startswith("not a recognised KakaoTalk export"):
            why = cause.partition("(")[2].rstrip(")") or "no known layout"
            cause = f"not a recognised chat export ({why}; read are {READ}: see `rememberme formats`)"
        raise InputError(name, cause) from None
    return ExportInfo(path, name, path.stat().st_size, digest, encoding, detection)


def iter_batches(
    info: ExportInfo,
    ctx: ParseContext,
    on_progress: Callable[[int], None] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[ParseBatch]:
    """Parse the export in chunks; each batch holds messages and quarantined lines."""
    if info.family == SMS:
        yield from sms.parse_backup(info.path, ctx, on_progress, encoding=info.encoding)
        return
    if info.family == TELEGRAM and info.format_name == TELEGRAM_HTML:
        yield from telegram_html.parse_export(info.path, ctx, info.encoding, on_progress, chunk_bytes)
        return
    if info.family == TELEGRAM:
        yield from telegram.parse_export(info.path, ctx, info.display_name)
        return
    if info.family == MESSENGER:
        yield from messenger.parse_part(info.path, ctx, info.display_name)
        return
    if info.family == LINE:
        yield from line_chat.parse_chunks(
            file_chunks(info.path, info.encoding, on_progress, chunk_bytes), ctx
        )
        return
    if info.whatsapp is not None:
        chunks = file_chunks(info.path, info.encoding, on_progress, chunk_bytes)
        yield from whatsapp.parse_chunks(chunks, info.whatsapp, ctx)
        return
    yield from kakao_batches(info.path, info.detection, info.encoding, ctx, on_progress, chunk_bytes)
