"""Telegram Desktop HTML exports (`messages.html`, `messages2.html`, ...) as canonical Messages.

Telegram Desktop exports HTML unless told otherwise: one chat split into pages of about 1000
messages, each page a whole document that starts with the chat's name. The layout (Telegram
Desktop's export writer, and what public parsers' code shows of it):
- `<div class="page_header">` ... `<div class="text bold">CHAT NAME</div>`: the chat;
- a message is `<div class="message default clearfix" id="message123">` holding a `body` with its
  date (`<div class="pull_right date details" title="01.01.2024 09:00:00 UTC+09:00">`; older
  exports leave the offset out: local time, read in the context's timezone like the JSON reader's
  `date`), its sender (`<div class="from_name">`), media (`<div class="media_wrap clearfix">`) and
  its text (`<div class="text">`, `<br>` a line break, links and styles their text);
- a message of the same sender soon after the previous one is `... clearfix joined`, without a
  `from_name`: its sender is the previous message's;
- a forwarded message's text sits in a `forwarded body` with the original sender's name, and a
  reply starts with a `reply_to details` note: both read like the JSON reader reads them (the
  outer sender speaks the forwarded text; the note is not text);
- `<div class="message service" id="message-1">` with a `body details`: a negative id is a date
  line (not a message, skipped); any other is a `system` row where it has a date, else it is
  quarantined (Telegram writes service lines without one);
- a call is a message with `media_call`: a `call` row spoken by no one, as in the JSON export.
Kinds and placeholder texts are the JSON reader's (`rows.kind_of`, `rows.placeholder`). The
file is read in chunks through `html.parser` and yields batches as it goes; a message still open
at the end of the file is quarantined as cut off. Every page names its chat, so all pages of one
chat get one conversation id (`rows.conversation_id` by the chat's name), each page read alone.
Nothing here imports Prefect.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

from parsers.base import ParseBatch, ParseContext
from parsers.errors import InputError
from parsers.kakao.detect import Encoding
from parsers.kakao.reader import CHUNK_BYTES
from parsers.telegram.rows import Rows, batches, conversation_id, placeholder, rejection
from parsers.textlines import file_chunks

__all__ = ["SOURCE", "parse_chunks", "parse_export", "sniff"]

SOURCE = "telegram_html"
#: Rows a batch holds at most (a page holds about 1000 messages; a chat many pages).
_BATCH = 20_000
#: A record number for a message without a readable `id="message123"`: above every Telegram
#: message id (32-bit), plus the line it starts on.
_NO_ID = 9_000_000_000
_OPENING = ("<!doctype html", "<html")
_MESSAGE_DIV = re.compile(r"""<div\s+class=["']message\s+(?:default|service)\b""")
_HEADER_DIV = re.compile(r"""<div\s+class=["']page_header["']""")
_ID = re.compile(r"message(-?\d{1,10})")
#: `01.01.2024 09:00:00`, then maybe ` UTC+09:00` (`UTC` alone at offset zero); the oldest
#: exports wrote the year first (`2018.01.01 09:00:00`).
_DATE = re.compile(
    r"^\s*(?:(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})|(?P<y2>\d{4})\.(?P<m2>\d{1,2})\.(?P<d2>\d{1,2}))"
    r"[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?"
    r"(?:\s*(?:UTC|GMT)(?:(?P<sign>[+-])(?P<oh>\d{1,2})(?::?(?P<om>\d{2}))?)?)?\s*$"
)
#: The line breaks and indentation the writer puts around blocks: not the message's (its own
#: line breaks are `<br>`).
_LAYOUT = re.compile(r"\r?\n[ \t]*")
_VIA = re.compile(r"\s+via\s+@\w+$")
#: Media classes and the kinds the JSON reader gives the same media (`rows.MEDIA`, `kind_of`).
_MEDIA_CLASSES = {
    "photo_wrap": "photo", "media_photo": "photo", "sticker_wrap": "emoticon",
    "video_file_wrap": "video", "animated_wrap": "video", "media_video": "video",
    "media_voice_message": "voice", "media_audio_file": "voice", "media_file": "file",
    "media_location": "location", "media_live_location": "location", "media_venue": "location",
    "media_contact": "contact", "media_call": "call",
}  # fmt: skip
_TRUNCATED = "truncated last message"
#: How a message's opening tag starts (a file cut off inside it ends with a piece of it).
_OPENS = '<div class="message '
_NO_TIME = "service message without a time"


def sniff(sample: str) -> bool:
    """Whether the head of a text is a page of a Telegram Desktop HTML chat export."""
    head = sample.lstrip("\ufeff \r\n\t")
    return (
        head[:15].lower().startswith(_OPENING)
        and _HEADER_DIV.search(head) is not None
        and _MESSAGE_DIV.search(head) is not None
    )


def parse_export(
    path: Path,
    ctx: ParseContext,
    encoding: Encoding,
    on_progress: Callable[[int], None] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[ParseBatch]:
    """Messages (each with its chat's conversation id) and quarantined messages of one page, in batches."""
    chunks = (data.decode("utf-8") for data in file_chunks(path, encoding, on_progress, chunk_bytes))
    yield from parse_chunks(chunks, ctx)


def parse_chunks(chunks: Iterable[str], ctx: ParseContext, batch: int = _BATCH) -> Iterator[ParseBatch]:
    """`parse_export` over text chunks (cut anywhere); a batch every `batch` rows, then the rest."""
    page = _Page(ctx)
    try:
        for chunk in chunks:
            # `<![` opens a marked section, which `html.parser` refuses; Telegram escapes every `<`
            # of a text, so only a broken file holds one: read it as text.
            page.feed(chunk.replace("<![", "&lt;!["))
            if len(page.rows.records) >= batch:
                yield page.flush()
        leftover = page.rawdata  # what a cut-off file ends with that is not whole markup yet
        page.close()
    except AssertionError as exc:  # html.parser's refusal of markup it cannot read
        where = f"near line {page.getpos()[0]}"
        raise InputError(ctx.source_file, f"unreadable HTML {where} ({exc}); export it again") from None
    page.finish(leftover)
    yield page.flush()


@dataclass
class _Columns:
    """Rows gathered since the last batch: accepted (columns) and rejected."""

    seconds: list[float] = field(default_factory=list)
    speakers: list[str | None] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    records: list[int] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)
    rejected: tuple[list[int], list[str], list[str]] = field(default_factory=lambda: ([], [], []))


@dataclass
class _Message:
    """One message while its `div` is open."""

    number: int
    #: The id Telegram gave it (`id="message123"`), if readable.
    telegram_id: int | None
    service: bool
    joined: bool
    date: str | None = None
    sender: list[str] | None = None
    #: Text pieces; None is a `<br>`.
    text: list[str | None] = field(default_factory=list)
    kind: str = "text"
    media_title: list[str] = field(default_factory=list)
    media_status: list[str] = field(default_factory=list)


#: What an open element is, for the text inside it.
_HEADER, _CHAT_NAME, _MESSAGE, _FROM, _FORWARDED, _REPLY = "header", "name", "message", "from", "fwd", "reply"
_TEXT, _SERVICE_TEXT, _MEDIA, _MEDIA_TITLE, _MEDIA_STATUS = "text", "service", "media", "title", "status"
_VOID = frozenset(
    ("br", "img", "meta", "link", "hr", "input", "source", "wbr", "area", "base", "col", "embed", "track")
)


class _Page(HTMLParser):
    """A page's elements as they stream by; each message becomes a row or a rejection when it closes."""

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(convert_charrefs=True)
        self.ctx = ctx
        self.rows = _Columns()
        #: Open elements: (tag, role); and how many of each role are open.
        self.stack: list[tuple[str, str]] = []
        self.open: dict[str, int] = {}
        self.chat_name: list[str] | None = None
        self.thread = ""
        self.message: _Message | None = None
        self.previous_sender: str | None = None
        self.seen: set[int] = set()
        #: The page's `history` (its messages) has begun.
        self.in_history = False

    # -- elements ------------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open an element, noting what it is for the text inside it."""
        if tag == "br":
            self._line_break()
            return
        if tag in _VOID:
            return
        values = dict(attrs)
        role = self._role(tag, set((values.get("class") or "").split()), values)
        self.stack.append((tag, role))
        if role:
            self.open[role] = self.open.get(role, 0) + 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """A self-closed element (`<br/>`, `<img .../>`): nothing stays open."""
        if tag == "br":
            self._line_break()

    def handle_endtag(self, tag: str) -> None:
        """Close the innermost open element of this tag (and any left open inside it)."""
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                break
        else:
            return  # a stray end tag
        while len(self.stack) > depth:
            _, role = self.stack.pop()
            if role:
                self.open[role] -= 1
            if role == _MESSAGE:
                self._finish_message()
            elif role == _CHAT_NAME and self.chat_name is not None:
                name = " ".join("".join(self.chat_name).split())
                self.thread = _thread(self.ctx, name)

    def handle_data(self, data: str) -> None:
        """Text goes to what the innermost interesting element is."""
        if self.open.get(_CHAT_NAME) and self.chat_name is not None:
            self.chat_name.append(data)
            return
        message = self.message
        if message is None or self.open.get(_REPLY):
            return
        if self.open.get(_MEDIA_TITLE):
            message.media_title.append(data)
        elif self.open.get(_MEDIA_STATUS):
            message.media_status.append(data)
        elif self.open.get(_MEDIA):
            return
        elif self.open.get(_TEXT) or self.open.get(_SERVICE_TEXT):
            message.text.append(data)
        elif self.open.get(_FROM) and not self.open.get(_FORWARDED) and message.sender is not None:
            message.sender.append(data)

    def _line_break(self) -> None:
        within = self.open.get(_TEXT) or self.open.get(_SERVICE_TEXT)
        if self.message is not None and within and not self.open.get(_MEDIA) and not self.open.get(_REPLY):
            self.message.text.append(None)

    def _role(self, tag: str, classes: set[str], attrs: dict[str, str | None]) -> str:
        """What an element opening now is: a message, its date, sender, text, media, or nothing of note."""
        message = self.message
        if message is None:
            self.in_history = self.in_history or "history" in classes
            if tag == "div" and "message" in classes and classes & {"default", "service"}:
                self._start_message(classes, attrs.get("id") or "")
                return _MESSAGE
            if tag == "div" and "page_header" in classes and self.chat_name is None:
                return _HEADER
            if self.open.get(_HEADER) and tag == "div" and {"text", "bold"} <= classes:
                self.chat_name = []
                return _CHAT_NAME
            return ""
        if self.open.get(_MEDIA):
            for name in classes:
                if name in _MEDIA_CLASSES and message.kind == "text":
                    message.kind = _MEDIA_CLASSES[name]
            return _MEDIA_TITLE if "title" in classes else _MEDIA_STATUS if "status" in classes else ""
        if "date" in classes and "details" in classes:
            if tag == "div" and message.date is None and not self.open.get(_FORWARDED):
                message.date = attrs.get("title") or ""
            return ""
        if "from_name" in classes:
            if not self.open.get(_FORWARDED) and message.sender is None:
                message.sender = []
            return _FROM
        if "forwarded" in classes and "body" in classes:
            return _FORWARDED
        if "reply_to" in classes:
            return _REPLY
        if "media_wrap" in classes:
            return _MEDIA
        if tag == "div" and "text" in classes and not message.service:
            return _TEXT
        if message.service and "body" in classes and "details" in classes:
            return _SERVICE_TEXT
        return ""

    # -- messages ------------------------------------------------------------------------------

    def _start_message(self, classes: set[str], html_id: str) -> None:
        found = _ID.fullmatch(html_id.strip())
        telegram_id = int(found.group(1)) if found else None
        number = telegram_id if telegram_id is not None and telegram_id > 0 else _NO_ID + self.getpos()[0]
        self.message = _Message(number, telegram_id, "service" in classes, "joined" in classes)

    def _finish_message(self) -> None:
        message, self.message = self.message, None
        if message is None:
            return
        if message.service and message.telegram_id is not None and message.telegram_id < 0:
            return  # a date line ("1 January 2024"), not a message
        text = _clean(message.text)
        sender = _name(message.sender)
        if not message.service:
            sender = sender or (self.previous_sender if message.joined else None)
            self.previous_sender = sender
        reason, seconds = self._when(message)
        if reason is None and message.number in self.seen:
            reason = "repeated message id"
        speaker: str | None = None
        if message.service:
            kind = "system"
        elif message.kind == "call":
            kind = "call"  # the JSON export's service message: spoken by no one, its actor in the text
            text = placeholder({"type": "service", "actor": sender, "action": "phone_call"}, kind)
        else:
            kind, speaker = _kind(message), sender
            reason = reason or rejection(seconds, speaker, True)
            text = text or placeholder({"sticker_emoji": _emoji(message, kind)}, kind)
        if reason is not None or seconds is None:
            self._reject(message.number, reason or "no date", _raw(message, sender, text))
            return
        self.seen.add(message.number)
        rows = self.rows
        rows.seconds.append(seconds)
        rows.speakers.append(speaker)
        rows.texts.append(text)
        rows.kinds.append(kind)
        rows.records.append(message.number)
        rows.threads.append(self.thread or _thread(self.ctx, None))

    def _when(self, message: _Message) -> tuple[str | None, float | None]:
        """The message's instant, or why it has none."""
        if message.date is None:
            return (_NO_TIME if message.service else "no date"), None
        seconds = _instant(message.date, self.ctx.timezone)
        if seconds is None:
            return "unreadable date", None
        return rejection(seconds, None, False), seconds

    def _reject(self, number: int, reason: str, raw: str) -> None:
        rejected = self.rows.rejected
        rejected[0].append(number)
        rejected[1].append(reason)
        rejected[2].append(raw[:2000])

    def finish(self, leftover: str) -> None:
        """At the end of the file: a message still open, or cut off in its opening tag, was cut off."""
        message, self.message = self.message, None
        if message is not None:
            sender = _name(message.sender)
            self._reject(message.number, _TRUNCATED, _raw(message, sender, _clean(message.text)))
            return
        tag = " ".join(leftover.split())
        if self.in_history and len(tag) > 1 and (tag.startswith(_OPENS) or _OPENS.startswith(tag)):
            found = _ID.search(tag)
            number = int(found.group(1)) if found and int(found.group(1)) > 0 else _NO_ID + self.getpos()[0]
            self._reject(number, _TRUNCATED, tag)

    def flush(self) -> ParseBatch:
        """The rows gathered so far as one batch (all of them: the batch size is their number)."""
        c, self.rows = self.rows, _Columns()
        rows = Rows(c.seconds, c.speakers, c.texts, c.kinds, c.records, c.threads, c.rejected)
        return next(batches(rows, self.ctx, len(c.records) + 1, SOURCE))


def _thread(ctx: ParseContext, name: str | None) -> str:
    """The chat's conversation: by its name, as the JSON reader's is without a chat id."""
    if not name:  # no page header: the page is its own conversation
        return "telegram-file-" + ctx.file_key[:16]
    return conversation_id(ctx.owner_id, {"name": name})


def _name(pieces: list[str] | None) -> str | None:
    """A sender's name as shown, without the writer's layout or a bot's ` via @bot`; None without one."""
    if pieces is None:
        return None
    return _VIA.sub("", " ".join("".join(pieces).split())) or None


def _clean(pieces: list[str | None]) -> str:
    """A text's pieces without the writer's layout; a `<br>` (None) is a line break."""
    out: list[str] = []
    run: list[str] = []
    for piece in pieces:
        if piece is None:
            out.append(_LAYOUT.sub("", "".join(run)))
            out.append("\n")
            run = []
        else:
            run.append(piece)
    out.append(_LAYOUT.sub("", "".join(run)))
    return "".join(out)


def _kind(message: _Message) -> str:
    """A message's kind from its media; a sticker not downloaded shows as a photo titled `Sticker`."""
    if message.kind == "photo" and " ".join("".join(message.media_title).split()) == "Sticker":
        return "emoticon"
    return message.kind


def _emoji(message: _Message, kind: str) -> str | None:
    """A sticker's emoji, where the page shows it (`😀, 12.3 KB` under a sticker not downloaded)."""
    if kind != "emoticon":
        return None
    first = " ".join("".join(message.media_status).split()).split(",")[0].strip()
    return first if first and not any(c.isascii() and c.isalnum() for c in first) else None


def _instant(title: str, zone: str) -> float | None:
    """UTC seconds of a date's `title`: with its offset, else read as local time in `zone`."""
    found = _DATE.match(title)
    if found is None:
        return None
    g = found.groupdict()
    try:
        tz: timezone | ZoneInfo = ZoneInfo(zone)
        if g["sign"]:
            offset = timedelta(hours=int(g["oh"]), minutes=int(g["om"] or 0))
            tz = timezone(-offset if g["sign"] == "-" else offset)
        elif "UTC" in title or "GMT" in title:
            tz = UTC
        local = datetime(
            int(g["y"] or g["y2"]),
            int(g["m"] or g["m2"]),
            int(g["d"] or g["d2"]),
            int(g["H"]),
            int(g["M"]),
            int(g["S"] or 0),
            tzinfo=tz,
        )
        return local.timestamp()
    except (ValueError, OverflowError):  # 31.02., hour 25, an offset of a day or more
        return None


def _raw(message: _Message, sender: str | None, text: str) -> str:
    """What a rejected message held, for its quarantine row."""
    parts = [
        f"id={message.telegram_id}" if message.telegram_id is not None else "id=?",
        "service" if message.service else "message",
        f"date={message.date!r}" if message.date is not None else "no date",
        f"from={sender!r}" if sender else "no sender",
        f"text={text!r}",
    ]
    return " ".join(parts)
