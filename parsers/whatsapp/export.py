"""WhatsApp chat exports (`.txt`, Android and iOS, 12/24 h, several locales) as canonical Messages.

What the exports look like (public parsers' code and issues, and WhatsApp's own help pages):
- Android: `12/31/21, 11:59 PM - Name: text`, `31/12/2021, 23:59 - Name: text`, `31.12.21, 23:59 - ...`,
  `2021. 12. 31. 오후 11:59 - 이름: 메시지` (ko); newer versions put U+202F before AM/PM.
- iOS: `[12/31/21, 11:59:59 PM] Name: text`, `[31.12.21, 23:59:59] Name: text`, lines that hold
  media or system notices start with U+200E.
- A message runs over several lines: a line without a header continues the one before.
- A header without `Name: ` is a system line (encryption notice, "X added Y", "X left").
- Whether `01/02/21` is the 1st of February or the 2nd of January is decided from the whole file
  (any first number above 12 means day first; any second number above 12 means month first);
  a file that cannot decide it says so (`date_order_decided` False), and the caller may force it.
- A name may contain ": " ("Dr: Kim"): a sender is the prefix that the same author repeats, learnt
  from the whole file, not the text up to the first colon.

Detected from content, never from the file name. Nothing here imports Prefect.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa

from parsers.base import (
    PHONE_NAME,
    ParseBatch,
    ParseContext,
    build_messages,
    build_quarantine,
    local_to_utc,
    number_handle,
)

SOURCE = "whatsapp_txt"
#: Marks WhatsApp puts before media and system lines, and the narrow spaces of newer time stamps.
_MARK_RE = re.compile("[\u200e\u200f\u202a-\u202e\ufeff]")
_ODD = re.compile("[\u200e\u200f\u202a-\u202f\ufeff\u00a0]")
_DATE = r"(?P<a>\d{1,4})[./-] ?(?P<b>\d{1,2})[./-] ?(?P<c>\d{1,4})\.?"
_AMPM = r"(?:[AaPp]\.? ?[Mm]\.?)"
_TIME = (
    rf"(?:(?P<ko>오전|오후) )?(?P<h>\d{{1,2}})[:.](?P<m>\d{{2}})(?:[:.](?P<s>\d{{2}}))?(?: ?(?P<ap>{_AMPM}))?"
)
_ANDROID = re.compile(rf"^{_DATE},? {_TIME} [-–] (?P<rest>.*)$")
_IOS = re.compile(rf"^\[{_DATE},? {_TIME}\] (?P<rest>.*)$")
#: Lines before the first header, or headers whose numbers make no date: how many to read at most.
SAMPLE_LINES = 50
_BATCH = 20_000

_DELETED = (
    "This message was deleted", "You deleted this message", "삭제된 메시지입니다.",
    "Diese Nachricht wurde gelöscht.", "Se eliminó este mensaje.", "Eliminaste este mensaje.",
)  # fmt: skip
_OMITTED = {
    "image omitted": "photo", "video omitted": "video", "audio omitted": "voice",
    "sticker omitted": "emoticon", "GIF omitted": "video", "document omitted": "file",
    "Contact card omitted": "contact", "<Media omitted>": "file", "<미디어 없음>": "file",
    "<Medien ausgeschlossen>": "file", "<Multimedia omitido>": "file", "null": "hidden",
    "Bild weggelassen": "photo", "Video weggelassen": "video", "Audio weggelassen": "voice",
    "Sticker weggelassen": "emoticon", "Dokument weggelassen": "file",
    "imagen omitida": "photo", "video omitido": "video", "audio omitido": "voice",
    "sticker omitido": "emoticon",
}  # fmt: skip
_ATTACHED_WORDS = "file attached|파일 첨부됨|Datei angehängt|archivo adjunto"
_ATTACHED = re.compile(
    rf"^<attached: (?P<file>[^>]+)>$|^(?P<file2>\S+\.\w{{2,5}}) \((?:{_ATTACHED_WORDS})\)$"
)
_FILE_KIND = (("PHOTO", "photo"), ("IMG", "photo"), ("VIDEO", "video"), ("VID", "video"), ("AUDIO", "voice"),
              ("PTT", "voice"), ("AUD", "voice"), ("STICKER", "emoticon"), ("STK", "emoticon"))  # fmt: skip


@dataclass(frozen=True)
class WhatsAppDetection:
    """What the whole file says about its layout."""

    layout: str  # "android" or "ios"
    #: "dmy", "mdy" or "ymd"; how the date numbers read.
    date_order: str
    #: False when no date in the file told day from month (the order is a guess; `--date-order`).
    date_order_decided: bool
    #: Senders, longest first (names may contain ": ").
    senders: tuple[str, ...]


def clean_line(raw: str) -> str:
    """A line without WhatsApp's direction marks and with plain spaces (what the patterns read)."""
    line = raw.rstrip("\r\n")
    if _ODD.search(line) is None:  # most lines: nothing to clean (str.translate costs a third of a parse)
        return line
    return _MARK_RE.sub("", line).replace("\u202f", " ").replace("\u00a0", " ")


def _header(line: str) -> re.Match[str] | None:
    return _ANDROID.match(line) or _IOS.match(line)


def sniff(sample: str) -> bool:
    """Whether the first lines of a text look like a WhatsApp export (two headers among them)."""
    lines = [clean_line(x) for x in sample.splitlines()[:SAMPLE_LINES]]
    return sum(1 for x in lines if _header(x)) >= min(2, max(1, len([x for x in lines if x.strip()])))


def detect(lines: Iterable[str], forced_order: str | None = None) -> WhatsAppDetection | None:
    """Read the whole file's headers: layout, the day/month order, the senders. None: not WhatsApp."""
    layouts: Counter[str] = Counter()
    first_big = second_big = year_first = dotted = ampm = False
    prefixes: Counter[str] = Counter()
    pieces: dict[str, Counter[str]] = {}
    for raw in lines:
        line = clean_line(raw)
        match = _header(line)
        if match is None:
            continue
        layouts["ios" if line.startswith("[") else "android"] += 1
        a, b = int(match["a"]), int(match["b"])
        year_first |= len(match["a"]) == 4
        first_big |= a > 12 and len(match["a"]) <= 2
        second_big |= b > 12
        dotted |= "." in line[: match.end("c")] and not match["ko"]
        ampm |= bool(match["ap"])
        rest = match["rest"]
        if ": " in rest:
            head, _, tail = rest.partition(": ")
            prefixes[head] += 1
            pieces.setdefault(head, Counter())[tail.partition(": ")[0] if ": " in tail else ""] += 1
    if not layouts:
        return None
    if forced_order:
        order, decided = forced_order, True
    elif year_first:
        order, decided = "ymd", True
    elif first_big != second_big:
        order, decided = ("dmy" if first_big else "mdy"), True
    else:  # nothing tells: dotted dates and 24 h clocks are day first, AM/PM ones (en-US) month first
        order, decided = ("mdy" if ampm and not dotted else "dmy"), False
    return WhatsAppDetection(layouts.most_common(1)[0][0], order, decided, _senders(prefixes, pieces))


def _senders(prefixes: Counter[str], pieces: dict[str, Counter[str]]) -> tuple[str, ...]:
    """Names: a first-colon prefix, or that prefix and the piece after it when every line repeats it."""
    names = set()
    for head, count in prefixes.items():
        (piece, seen), *others = pieces[head].most_common() or [("", 0)]
        if piece and not others and seen == count and count >= 2:
            names.add(f"{head}: {piece}")  # "Dr: Kim: text" on every line: the name is "Dr: Kim"
        else:
            names.add(head)
    return tuple(sorted(names, key=len, reverse=True))


def _kind(text: str) -> str:
    if text in _OMITTED:
        return _OMITTED[text]
    if text in _DELETED:
        return "deleted"
    if text.startswith(("location: ", "위치: ", "Standort: ", "ubicación: ")):
        return "location"
    match = _ATTACHED.match(text)
    if match:
        name = (match["file"] or match["file2"]).upper()
        stem = name.split("-")[1] if name[:1].isdigit() and "-" in name else name.split("-")[0]
        return next((kind for prefix, kind in _FILE_KIND if stem.startswith(prefix)), "file")
    return "text"


@dataclass
class _Message:
    line_no: int
    seconds: int
    speaker: str | None
    lines: list[str]


def _seconds(match: re.Match[str], order: str) -> int | None:
    a, b, c = int(match["a"]), int(match["b"]), int(match["c"])
    year, month, day = (a, b, c) if order == "ymd" else (c, b, a) if order == "dmy" else (c, a, b)
    year += 2000 if year < 100 else 0
    hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
    marker = (match["ap"] or "").lower().replace(".", "").replace(" ", "")
    if match["ko"] == "오후" or marker == "pm":
        hour = hour % 12 + 12
    elif match["ko"] == "오전" or marker == "am":
        hour %= 12
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def _as_written(raw: str, length: int) -> str:
    """The last `length` characters of the cleaned line, as the raw line has them.

    Only the header is normalised (its marks and narrow spaces): a message keeps its own no-break
    spaces. Cleaning deletes marks and swaps spaces one for one, so the raw tail is found by
    counting the characters that are not marks from the end; the marks WhatsApp puts before a
    media placeholder (`\u200eimage omitted`) go.
    """
    start = len(raw)
    while length > 0 and start > 0:
        start -= 1
        length -= _MARK_RE.match(raw[start]) is None
    return _MARK_RE.sub("", raw[start:]) if _MARK_RE.match(raw[start : start + 1] or "x") else raw[start:]


def parse_lines(
    lines: Iterable[str], detection: WhatsAppDetection, ctx: ParseContext, batch: int = _BATCH
) -> Iterator[ParseBatch]:
    """Messages and quarantined lines of a WhatsApp export, in batches (the file read once, streamed)."""
    pending: list[_Message] = []
    rejected: tuple[list[int], list[str], list[str]] = ([], [], [])
    current: _Message | None = None
    for line_no, raw in enumerate(lines, start=1):
        line = clean_line(raw)
        match = _header(line)
        seconds = _seconds(match, detection.date_order) if match else None
        if match is not None and seconds is None:
            rejected[0].append(line_no)
            rejected[1].append(f"no such date or time in {detection.date_order} order")
            rejected[2].append(raw.rstrip("\r\n"))
            continue
        if match is None:
            if current is None:
                if line.strip():
                    rejected[0].append(line_no)
                    rejected[1].append("text before the first message header")
                    rejected[2].append(raw.rstrip("\r\n"))
                continue
            current.lines.append(raw.rstrip("\r\n"))  # as written
            continue
        assert seconds is not None
        if current is not None:
            pending.append(current)
        rest = match["rest"]
        speaker = next((n for n in detection.senders if rest.startswith(f"{n}: ")), None)
        text = _as_written(raw.rstrip("\r\n"), len(rest) - (len(speaker) + 2 if speaker is not None else 0))
        if speaker is not None and PHONE_NAME.match(speaker):  # an unsaved contact: never the number
            speaker = number_handle(ctx.owner_id, speaker)
        current = _Message(line_no, seconds, speaker, [text])
        if len(pending) >= batch:
            yield _batch(pending, rejected, ctx)
            pending, rejected = [], ([], [], [])
    if current is not None:
        pending.append(current)
    yield _batch(pending, rejected, ctx)


def _batch(
    messages: list[_Message], rejected: tuple[list[int], list[str], list[str]], ctx: ParseContext
) -> ParseBatch:
    texts = ["\n".join(m.lines) for m in messages]
    kinds = [_kind(t) if m.speaker is not None else "system" for m, t in zip(messages, texts, strict=True)]
    table = build_messages(
        ctx,
        SOURCE,
        local_to_utc(np.array([m.seconds for m in messages], dtype=np.int64), ctx.timezone),
        pa.array([m.speaker for m in messages], pa.string()),
        pa.array(texts, pa.string()),
        pa.array(kinds, pa.string()),
        np.array([m.line_no for m in messages], dtype=np.int64),
    )
    return ParseBatch(table, build_quarantine(ctx, *rejected))


def conversation_id(sha256: str) -> str:
    """A WhatsApp export names no room in its content: the conversation is the file's."""
    return "whatsapp-file-" + hashlib.sha256(sha256.encode()).hexdigest()[:16]
