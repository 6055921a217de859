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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.arrays import bool_mask
from parsers.base import (
    PHONE_NAME,
    ParseBatch,
    ParseContext,
    build_messages,
    build_quarantine,
    empty_batch,
    local_to_utc,
    number_handle,
)
from parsers.dates import days_from_civil, days_in_month
from parsers.kakao.scan import slice_strings
from parsers.kakao.texts import message_texts
from parsers.textlines import cut_before_open_message, text_chunks, with_last
from parsers.whatsapp.headers import Headers, scan_headers

SOURCE = "whatsapp_txt"
#: Marks WhatsApp puts before media and system lines, and the narrow spaces of newer time stamps.
_MARK_RE = re.compile("[\u200e\u200f\u202a-\u202e\ufeff]")
_ODD = re.compile("[\u200e\u200f\u202a-\u202f\ufeff\u00a0]")
_DATE = r"(?P<a>[0-9]{1,4})(?P<p>[./-]) ?(?P<b>[0-9]{1,2})(?P<q>[./-]) ?(?P<c>[0-9]{1,4})\.?"
_AMPM = r"(?:[AaPp]\.? ?[Mm]\.?)"
_CLOCK = r"(?P<h>[0-9]{1,2})[:.](?P<m>[0-9]{2})(?:[:.](?P<s>[0-9]{2}))?"
_TIME = rf"(?:(?P<ko>오전|오후) )?{_CLOCK}(?: ?(?P<ap>{_AMPM}))?"
#: Android `date, time - rest` and iOS `[date, time] rest` in one pattern (Python `re` and RE2): a line
#: is a header when its opening bracket and its close agree.
_HEADER = re.compile(rf"^(?P<br>\[?){_DATE},? {_TIME}(?P<close>\]| [-–]) (?P<rest>.*)$")
#: Lines before the first header, or headers whose numbers make no date: how many to read at most.
SAMPLE_LINES = 50
#: The file's last line, cut off without its line end, that is the start of a header (`1/13/22, 7:0`).
_TORN = re.compile(
    r"^\[?[0-9]{1,4}(?:[./-] ?(?:[0-9]{1,2}(?:[./-] ?(?:[0-9]{1,4}\.?,?(?: (?:(?:오전|오후) ?)?"
    r"(?:[0-9]{1,2}(?:[:.](?:[0-9]{1,2}(?:[:.][0-9]{0,2})?)?)?)?"
    r"(?: ?[AaPp]\.? ?[Mm]?\.?)?(?:\]| [-–]?)?)?)?)?)?)?$"
)

_LOCATIONS = ("location: ", "위치: ", "Standort: ", "ubicación: ")
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
    "sticker omitido": "emoticon", "GIF omitido": "video", "documento omitido": "file",
    # Korean: iOS's stubs, and Android's other placeholder for an export without media.
    "이미지 생략됨": "photo", "동영상 생략됨": "video", "오디오 생략됨": "voice", "스티커 생략됨": "emoticon",
    "GIF 생략됨": "video", "문서 생략됨": "file", "연락처 카드 생략됨": "contact",
    "<미디어 파일을 생략한 대화내용>": "file", "<미디어 생략>": "file",
}  # fmt: skip
_ATTACHED_WORDS = "file attached|파일 첨부됨|Datei angehängt|archivo adjunto"
#: How an iOS export with media starts an attachment's line, by language (`<attached: x.jpg>`).
_ATTACHED_HEADS = ("<attached: ", "<첨부: ", "<Anhang: ", "<adjunto: ", "<attached : ", "<첨부 : ")
_ATTACHED = re.compile(
    rf"^<(?:{'|'.join(sorted({w[1:].rstrip(': ') for w in _ATTACHED_HEADS}))}) ?: (?P<file>[^>]+)>$"
    rf"|^(?P<file2>\S+\.\w{{2,5}}) \((?:{_ATTACHED_WORDS})\)$"
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
    match = _HEADER.match(line)
    return match if match is not None and (match["br"] == "[") == (match["close"] == "]") else None


def sniff(sample: str) -> bool:
    """Whether the first lines of a text look like a WhatsApp export (two headers among them)."""
    lines = [clean_line(x) for x in sample.splitlines()[:SAMPLE_LINES]]
    return sum(1 for x in lines if _header(x)) >= min(2, max(1, len([x for x in lines if x.strip()])))


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
    if text.startswith(_LOCATIONS):
        return "location"
    match = _ATTACHED.match(text)
    if match:
        name = (match["file"] or match["file2"]).upper()
        stem = name.split("-")[1] if name[:1].isdigit() and "-" in name else name.split("-")[0]
        return next((kind for prefix, kind in _FILE_KIND if stem.startswith(prefix)), "file")
    return "text"


def _as_written(raw: str, length: int) -> str:
    """The last `length` characters of the cleaned line, as the raw line has them.

    Only the header is normalised (its marks and narrow spaces): a message keeps its own no-break
    spaces. Cleaning deletes marks and swaps spaces one for one, so the raw tail is found by
    counting the characters that are not marks from the end.
    """
    start = len(raw)
    while length > 0 and start > 0:
        start -= 1
        length -= _MARK_RE.match(raw[start]) is None
    return raw[start:]


def detect_chunks(chunks: Iterable[bytes], forced_order: str | None = None) -> WhatsAppDetection | None:
    """Read the whole file's headers: layout, the day/month order, the senders. None: not WhatsApp."""
    android = ios = 0
    first_big = second_big = year_first = dotted = ampm = False
    prefixes: Counter[str] = Counter()
    pieces: dict[str, Counter[str]] = {}
    for data in chunks:
        found = scan_headers(data, pieces=True)
        if not found.header.any():
            continue
        f = {name: values[found.header] for name, values in found.fields.items()}
        ios += int((f["br"] == 1).sum())
        android += int((f["br"] == 0).sum())
        year_first |= bool((f["width_a"] == 4).any())
        first_big |= bool(((f["a"] > 12) & (f["width_a"] <= 2)).any())
        second_big |= bool((f["b"] > 12).any())
        dotted |= bool((((f["p"] == 2) | (f["q"] == 2)) & (f["ko"] == 0)).any())
        ampm |= bool((f["ap"] > 0).any())
        _count_prefixes(found.head, found.piece, prefixes, pieces)
    if not android + ios:
        return None
    if forced_order:
        order, decided = forced_order, True
    elif year_first:
        order, decided = "ymd", True
    elif first_big != second_big:
        order, decided = ("dmy" if first_big else "mdy"), True
    else:  # nothing tells: dotted dates and 24 h clocks are day first, AM/PM ones (en-US) month first
        order, decided = ("mdy" if ampm and not dotted else "dmy"), False
    layout = "ios" if ios > android else "android"
    return WhatsAppDetection(layout, order, decided, _senders(prefixes, pieces))


def _count_prefixes(
    head: pa.Array, piece: pa.Array, prefixes: Counter[str], pieces: dict[str, Counter[str]]
) -> None:
    """Count each first-colon prefix of the headers, and what follows it up to a next ': '."""
    table = pa.table({"head": head, "piece": piece}).filter(pc.is_valid(head))
    if not table.num_rows:
        return
    grouped = table.group_by(["head", "piece"]).aggregate([("head", "count")])
    counts = grouped["head_count"].to_pylist()
    for name, found, count in zip(
        grouped["head"].to_pylist(), grouped["piece"].to_pylist(), counts, strict=True
    ):
        prefixes[name] += count
        pieces.setdefault(name, Counter())[found] += count


def detect(lines: Iterable[str], forced_order: str | None = None) -> WhatsAppDetection | None:
    """`detect_chunks` over Python lines."""
    return detect_chunks(text_chunks(lines), forced_order)


def _seconds_of(f: dict[str, np.ndarray], order: str) -> tuple[np.ndarray, np.ndarray]:
    """Local seconds since the epoch of header fields, and which of them make a real date and time."""
    a, b, c = f["a"], f["b"], f["c"]
    year, month, day = (a, b, c) if order == "ymd" else (c, b, a) if order == "dmy" else (c, a, b)
    year = np.where(year < 100, year + 2000, year)
    hour, minute, second = f["h"], f["m"], f["s"]
    pm = (f["ko"] == 2) | (f["ap"] == 2)
    am = (f["ko"] == 1) | (f["ap"] == 1)
    hour = np.where(pm, hour % 12 + 12, np.where(am, hour % 12, hour))
    ok = (month >= 1) & (month <= 12) & (day >= 1) & (hour < 24) & (minute < 60) & (second < 60)
    ok &= day <= days_in_month(year, np.clip(month, 1, 12))
    days = days_from_civil(year, np.clip(month, 1, 12), np.clip(day, 1, 31))
    return days * 86_400 + hour * 3600 + minute * 60 + second, ok


@dataclass
class _State:
    """What crosses chunk boundaries: the open message's lines, and where the next line is."""

    carry: bytes = b""
    #: Line number of the first line of `carry` (or of the next chunk when nothing is carried).
    line_no: int = 1
    started: bool = False


def parse_chunks(
    chunks: Iterable[bytes], detection: WhatsAppDetection, ctx: ParseContext
) -> Iterator[ParseBatch]:
    """Messages and quarantined lines of a WhatsApp export, one batch per chunk (read once, streamed).

    Each chunk's headers are found at once (parsers/whatsapp/headers.py); a message still open at the
    chunk's end is carried into the next, so its continuation lines join it.
    """
    state = _State()
    yielded = False
    for data, last in with_last(chunks):
        batch = _parse_chunk(state.carry + data, last, detection, ctx, state)
        if batch is not None:
            yielded = True
            yield batch
    if not yielded:
        yield empty_batch(ctx)


def parse_lines(
    lines: Iterable[str], detection: WhatsAppDetection, ctx: ParseContext
) -> Iterator[ParseBatch]:
    """`parse_chunks` over Python lines."""
    yield from parse_chunks(text_chunks(lines), detection, ctx)


def _parse_chunk(
    data: bytes, last: bool, detection: WhatsAppDetection, ctx: ParseContext, state: _State
) -> ParseBatch | None:
    found = scan_headers(data)
    lines = found.lines
    n = len(lines)
    heads = np.flatnonzero(found.header)
    seconds = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    seconds[heads], ok[heads] = _seconds_of(
        {k: v[heads] for k, v in found.fields.items()}, detection.date_order
    )
    start_idx = np.flatnonzero(found.header & ok)
    cut = cut_before_open_message(start_idx, n, last, len(data), ctx.source_file, "WhatsApp export")
    if cut is None:  # one open message and nothing else yet: wait for more lines
        state.carry = data
        return None
    first_start = int(start_idx[0]) if len(start_idx) else n
    bad = found.header[:cut] & ~ok[:cut]
    prefix = (
        ~found.header[:cut] & (np.arange(cut) < first_start) if not state.started else np.zeros(cut, bool)
    )
    torn = np.zeros(cut, dtype=bool)
    if last and cut and not data.endswith(b"\n") and not found.header[cut - 1] and not prefix[cut - 1]:
        torn[cut - 1] = _TORN.match(clean_line(found.raw(np.array([cut - 1]))[0].as_py())) is not None
    quarantine = _rejected(found, bad | torn, prefix, detection.date_order, state.line_no, ctx)
    msg_idx = start_idx[start_idx < cut]
    at = np.searchsorted(heads, msg_idx)
    speaker, text_a = _speakers(found, at, detection, ctx)
    cont = np.flatnonzero(~found.header[:cut] & ~prefix & ~torn)
    owner = msg_idx[np.searchsorted(msg_idx, cont, side="right") - 1] if len(msg_idx) else cont
    texts = message_texts(lines, msg_idx, text_a, lines.end[msg_idx], cont, owner)
    messages = build_messages(
        ctx,
        SOURCE,
        local_to_utc(seconds[msg_idx], ctx.timezone),
        speaker,
        texts,
        _kinds(texts, speaker),
        msg_idx + state.line_no,
    )
    state.started |= len(msg_idx) > 0
    state.carry = data[int(lines.start[cut]) :] if cut < n else b""
    state.line_no += cut
    return ParseBatch(messages, quarantine)


def _rejected(
    found: Headers, bad: np.ndarray, prefix: np.ndarray, order: str, line_no: int, ctx: ParseContext
) -> pa.Table:
    if prefix.any():  # blank lines (marks aside) before the first header are nothing to keep
        before = found.raw(np.flatnonzero(prefix))
        trimmed = pc.utf8_trim_whitespace(pc.replace_substring_regex(before, _MARK_RE.pattern, ""))
        prefix = prefix.copy()
        prefix[np.flatnonzero(prefix)] = ~bool_mask(pc.equal(trimmed, ""))
    rows = np.flatnonzero(bad | prefix)
    reasons = [
        "text before the first message header"
        if prefix[i]
        else f"no such date or time in {order} order"
        if found.header[i]
        else "truncated last line"
        for i in rows.tolist()
    ]
    return build_quarantine(ctx, (rows + line_no).tolist(), reasons, found.raw(rows).to_pylist())


def _speakers(
    found: Headers, at: np.ndarray, detection: WhatsAppDetection, ctx: ParseContext
) -> tuple[pa.Array, np.ndarray]:
    """Each message header's speaker (None: a system line) and where its text starts."""
    head = found.head.take(pa.array(at, pa.int64()))
    rest_a, tail_a = found.rest_a[at], found.tail_a[at]
    plain = pa.array([n for n in detection.senders if ": " not in n], pa.string())
    named = pc.fill_null(pc.is_in(head, plain), False)
    speaker = pc.if_else(named, head, pa.scalar(None, pa.string()))
    text_a = np.where(bool_mask(named), tail_a, rest_a)
    colon_names = [n for n in detection.senders if ": " in n]  # longest first: "Dr: Kim" before "Dr"
    if colon_names:
        rows = found.lines.end[np.flatnonzero(found.header)][at]
        rest = slice_strings(found.lines, rest_a, rows)
        taken = np.zeros(len(at), dtype=bool)
        for name in colon_names:
            hit = bool_mask(pc.starts_with(rest, f"{name}: ")) & ~taken
            if hit.any():
                taken |= hit
                speaker = pc.replace_with_mask(
                    speaker, pa.array(hit), pa.repeat(pa.scalar(name), int(hit.sum()))
                )
                text_a = np.where(hit, rest_a + len(name.encode()) + 2, text_a)
    phones = {n: number_handle(ctx.owner_id, n) for n in detection.senders if PHONE_NAME.match(n)}
    if phones:  # an unsaved contact: never the number
        where = pc.index_in(speaker, pa.array(list(phones), pa.string()))
        handles = pa.array(list(phones.values()), pa.string()).take(pc.fill_null(where, 0))
        speaker = pc.if_else(pc.is_valid(where), handles, speaker)
    return speaker, text_a


def _kinds(texts: pa.Array, speaker: pa.Array) -> pa.Array:
    """`system` without a speaker; media, deletions, locations and attachments by their text; else `text`.

    Hash lookups and prefix/suffix kernels pick the few texts `_kind` must look at (a regex over
    every text was a seventh of a parse).
    """
    kinds = pc.if_else(pc.is_valid(speaker), "text", "system")
    if not len(texts):
        return kinds
    hint = bool_mask(pc.is_in(texts, pa.array([*_OMITTED, *_DELETED], pa.string())))
    hint |= bool_mask(pc.ends_with(texts, ")"))  # `IMG-1.jpg (file attached)`
    for prefix in (*_LOCATIONS, *_ATTACHED_HEADS):
        hint |= bool_mask(pc.starts_with(texts, prefix))
    hint &= bool_mask(pc.is_valid(speaker))
    if not hint.any():
        return kinds
    looked = [_kind(t) for t in texts.filter(pa.array(hint)).to_pylist()]
    return pc.replace_with_mask(kinds, pa.array(hint), pa.array(looked, pa.string()))


def conversation_id(sha256: str) -> str:
    """A WhatsApp export names no room in its content: the conversation is the file's."""
    return "whatsapp-file-" + hashlib.sha256(sha256.encode()).hexdigest()[:16]
