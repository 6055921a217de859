"""LINE chat histories (`.txt`, PC and mobile, English/Japanese/Korean) as canonical Messages.

The layout (LINE's help pages and public parsers' code and issues):
- a title line starting `[LINE]` ("[LINE] Chat history with Mom", "[LINE] 엄마님과의 대화",
  "[LINE] Momとのトーク履歴") and a saved-on line, then days;
- a day line holds a date and no tab: `2024/01/01(Mon)` (PC), `Mon, 1/1/2024` (mobile, month
  first), `2024.01.01 Monday`, `2024. 1. 1. (월)`, `2024/01/01(月)`;
- a message is `time<TAB>name<TAB>text`, the time `09:05`, `AM 9:05`, `9:05 PM`, `오후 3:04` or
  `午後3:04`; a text holding line breaks is quoted (`"..."`, a quote inside doubled) and runs over
  the following lines until its closing quote;
- `time<TAB>notice` without a second tab is a system line ("Mom unsent a message.");
- `[Sticker]`, `[Photo]`, `[Video]`, `[Voice message]`, `[File]`, `[Location]`, `[Contact]` and
  their Japanese and Korean forms are typed; a call notice (`☎ ...`) is a call.
A line before the first day, or a message line whose time is unreadable, is quarantined with its
reason. Detected from content (the `[LINE]` title), never from the file name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.arrays import bool_mask, not_null_mask
from parsers.base import ParseBatch, ParseContext, build_messages, build_quarantine, empty_batch, local_to_utc
from parsers.dates import days_from_civil, days_in_month, ffill
from parsers.kakao.scan import Lines, first_at_or_after, slice_strings, split_lines
from parsers.kakao.texts import message_texts
from parsers.textlines import cut_before_open_message, ints, text_chunks, with_last

SOURCE = "line_txt"
_YMD = re.compile(r"(?P<y>\d{4})\s*[./-]\s*(?P<m>\d{1,2})\s*[./-]\s*(?P<d>\d{1,2})")
_MDY = re.compile(r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})")
_TIME = re.compile(
    r"^(?:(?P<pre>AM|PM|오전|오후|午前|午後) ?)?(?P<h>\d{1,2}):(?P<mi>\d{2})(?: ?(?P<post>AM|PM))?$",
    re.IGNORECASE,
)
_KINDS = {
    "[Sticker]": "emoticon", "[스티커]": "emoticon", "[スタンプ]": "emoticon",
    "[Photo]": "photo", "[사진]": "photo", "[写真]": "photo",
    "[Video]": "video", "[동영상]": "video", "[動画]": "video",
    "[Voice message]": "voice", "[음성메시지]": "voice", "[ボイスメッセージ]": "voice",
    "[음성 메시지]": "voice",
    "[File]": "file", "[파일]": "file", "[ファイル]": "file",
    "[Location]": "location", "[위치정보]": "location", "[위치 정보]": "location", "[位置情報]": "location",
    "[Contact]": "contact", "[연락처]": "contact", "[連絡先]": "contact",
}  # fmt: skip


def sniff(sample: str) -> bool:
    """Whether a text starts like a LINE chat history (its `[LINE]` title)."""
    return sample.lstrip("\ufeff").lstrip().startswith("[LINE]")


#: RE2 forms of the patterns above, for Arrow's kernels (ASCII digits; the clock case-blind).
_CLOCK_RE2 = (
    r"(?i)^(?:(?P<pre>AM|PM|오전|오후|午前|午後) ?)?(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{2})(?: ?(?P<post>AM|PM))?$"
)
_YMD_RE2 = r"(?P<y>[0-9]{4})\s*[./-]\s*(?P<m>[0-9]{1,2})\s*[./-]\s*(?P<d>[0-9]{1,2})"
_MDY_RE2 = r"(?P<m>[0-9]{1,2})/(?P<d>[0-9]{1,2})/(?P<y>[0-9]{4})"
_NOT_A_LINE = "not a message, day or notice line"
_TORN_REASON = "truncated last line"
#: A text `"` and then only doubled quotes: it may open a quoted text of several lines.
_OPENS = r'^"(?:[^"]|"")*$'
#: The file's last line, cut off without its line end, that is the start of a day or message line.
_TORN = re.compile(
    r"^(?:[0-9]{1,4}(?:[./-] ?(?:[0-9]{0,2}(?:[./-] ?[0-9]{0,2})?)?)?"
    r"|(?:(?:AM|PM|오전|오후|午前|午後) ?)?[0-9]{1,2}(?::[0-9]{0,2})?(?: ?[AP]M?)?)$",
    re.IGNORECASE,
)
_BEFORE_DAY = "a line before the first day"


@dataclass
class _State:
    """What crosses chunk boundaries: the open message's lines, the day in effect, line numbers."""

    carry: bytes = b""
    #: Line number of the first line of `carry` (or of the next chunk).
    line_no: int = 1
    #: Days since 1970-01-01 in effect before that line (-1: no day line yet).
    day: int = -1
    #: A message was read before that line (later loose lines continue it).
    started: bool = False


def parse_chunks(chunks: Iterable[bytes], ctx: ParseContext) -> Iterator[ParseBatch]:
    """Messages and quarantined lines of a LINE chat history, one batch per chunk (streamed).

    Each chunk's lines are classified at once (tabs, clocks and day lines by Arrow kernels); only
    the lines that open or close a quoted text, and the day lines, are walked in order.
    """
    state = _State()
    yielded = False
    for data, last in with_last(chunks):
        batch = _parse_chunk(state.carry + data, last, ctx, state)
        if batch is not None:
            yielded = True
            yield batch
    if not yielded:
        yield empty_batch(ctx)


def parse_lines(lines: Iterable[str], ctx: ParseContext) -> Iterator[ParseBatch]:
    """`parse_chunks` over Python lines."""
    yield from parse_chunks(text_chunks(lines), ctx)


@dataclass
class _Lines:
    """A chunk's lines, classified."""

    lines: Lines
    line_no: np.ndarray
    #: Per line: a message line's minute of the day (-1: not one), where its speaker and text lie.
    minute: np.ndarray
    speaker_a: np.ndarray
    speaker_b: np.ndarray  # -1: no speaker (a notice)
    text_a: np.ndarray
    #: Per line: the day a day line names (-1: not one).
    day: np.ndarray


def _classify(data: bytes, first_line_no: int) -> _Lines:
    lines = split_lines(data)
    n = len(lines)
    start, end, buf = lines.start, lines.end, lines.buf
    tabs = np.flatnonzero(buf[: lines.size] == 9)
    tab1 = first_at_or_after(tabs, start, end)
    tab2 = first_at_or_after(tabs, np.where(tab1 >= 0, tab1 + 1, end), end)
    minute = np.full(n, -1, dtype=np.int64)
    with_tab = np.flatnonzero(tab1 >= 0)
    if len(with_tab):
        clock = pc.utf8_trim_whitespace(slice_strings(lines, start[with_tab], tab1[with_tab]))
        minute[with_tab] = _minutes(pc.extract_regex(clock, _CLOCK_RE2))
    line_no = first_line_no + np.arange(n)
    day = np.full(n, -1, dtype=np.int64)
    maybe_day = np.flatnonzero((tab1 < 0) & (line_no > 2))  # line 2 is the saved-on time, not a day
    if len(maybe_day):
        day[maybe_day] = _days(lines.strings(maybe_day))
    text_a = np.where(tab2 >= 0, tab2 + 1, tab1 + 1)
    return _Lines(lines, line_no, minute, tab1 + 1, tab2, text_a, day)


def _minutes(found: pa.StructArray) -> np.ndarray:
    """Minute of the day of each clock match (-1: no clock)."""
    hour, minute = ints(found.field("h")), ints(found.field("mi"))
    marker = pc.utf8_upper(
        pc.if_else(pc.equal(found.field("pre"), ""), found.field("post"), found.field("pre"))
    )
    pm = bool_mask(pc.is_in(marker, pa.array(["PM", "오후", "午後"])))
    am = bool_mask(pc.is_in(marker, pa.array(["AM", "오전", "午前"])))
    hour = np.where(pm, hour % 12 + 12, np.where(am, hour % 12, hour))
    ok = not_null_mask(found) & (hour < 24) & (minute < 60)
    return np.where(ok, hour * 60 + minute, -1)


def _days(texts: pa.Array) -> np.ndarray:
    """Days since 1970-01-01 of each day line (-1: not one); `2024/01/01` first, then `1/1/2024`."""
    ymd = pc.extract_regex(texts, _YMD_RE2)
    mdy = pc.extract_regex(texts, _MDY_RE2)
    use_ymd = not_null_mask(ymd)
    y = np.where(use_ymd, ints(ymd.field("y")), ints(mdy.field("y")))
    m = np.where(use_ymd, ints(ymd.field("m")), ints(mdy.field("m")))
    d = np.where(use_ymd, ints(ymd.field("d")), ints(mdy.field("d")))
    ok = (use_ymd | not_null_mask(mdy)) & (y >= 1) & (m >= 1) & (m <= 12) & (d >= 1)
    ok &= d <= days_in_month(y, np.clip(m, 1, 12))
    return np.where(ok, days_from_civil(y, np.clip(m, 1, 12), np.clip(d, 1, 31)), -1)


def _trailing_quotes(buf: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many `"` end each byte range [lo, hi)."""
    count = np.zeros(len(lo), dtype=np.int64)
    active = hi > lo
    j = 1
    while active.any():
        active &= (hi - j >= lo) & (buf[np.maximum(hi - j, 0)] == 34)
        count += active
        j += 1
    return count


def _quoted(c: _Lines, day_before: int, last: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which lines sit inside a quoted text (its closing line included), and which are day lines.

    LINE quotes a text that holds line breaks, its own quotes doubled. So a message whose text is
    `"` and then only doubled quotes opens one when a line ending in an odd number of quotes comes
    before the next message line; that quote takes every line up to it, day lines too. Otherwise
    (`"The Road" was great`, `"Hi mom` with no close) the text is one line, as LINE wrote it.
    Undecided at a chunk's end, the lines after an opener wait for the next chunk.
    """
    lines = c.lines
    n = len(lines)
    strong = (c.minute >= 0) & (c.speaker_b >= 0)
    opener = strong & (lines.buf[c.text_a] == 34) & (c.text_a < lines.end)
    if opener.any():
        rows = np.flatnonzero(opener)
        texts = slice_strings(lines, c.text_a[rows], lines.end[rows])
        opener[rows] = bool_mask(pc.match_substring_regex(texts, _OPENS))
    is_day = c.day >= 0
    if not opener.any():
        return np.zeros(n, dtype=bool), is_day
    closer = _trailing_quotes(lines.buf, lines.start, lines.end) % 2 == 1
    closers, strongs = np.flatnonzero(closer), np.flatnonzero(strong)
    inside = np.zeros(n, dtype=bool)
    is_day = np.zeros(n, dtype=bool)
    day_known, until = day_before >= 0, -1
    for i in np.flatnonzero(opener | (c.day >= 0)).tolist():
        if i <= until:
            continue
        if c.day[i] >= 0:
            is_day[i] = day_known = True
        elif day_known:
            j, k = _next(closers, i), _next(strongs, i)
            if j >= 0 and (k < 0 or j < k):
                inside[i + 1 : j + 1] = True
                until = j
            elif j < 0 and k < 0 and not last:
                inside[i + 1 :] = True
                break
    return inside, is_day


def _next(positions: np.ndarray, after: int) -> int:
    """The first of sorted `positions` after `after`, or -1."""
    k = int(np.searchsorted(positions, after, side="right"))
    return int(positions[k]) if k < len(positions) else -1


def _parse_chunk(data: bytes, last: bool, ctx: ParseContext, state: _State) -> ParseBatch | None:
    c = _classify(data, state.line_no)
    lines = c.lines
    n = len(lines)
    inside, is_day = _quoted(c, state.day, last)
    day = ffill(np.where(is_day, c.day, -1), state.day)
    is_msg = (c.minute >= 0) & ~inside & ~is_day & (day >= 0)
    msg_idx = np.flatnonzero(is_msg)
    cut = cut_before_open_message(msg_idx, n, last, len(data), ctx.source_file, "LINE chat history")
    if cut is None:  # one open message and nothing else yet: wait for more lines
        state.carry = data
        return None
    msg_idx = msg_idx[msg_idx < cut]
    loose = np.arange(cut)[~is_msg[:cut] & ~is_day[:cut] & ~inside[:cut]]
    after_msg = state.started | (loose > (msg_idx[0] if len(msg_idx) else cut))
    nonempty = lines.end[loose] > lines.start[loose]
    head = lines.strings(loose)
    not_title = ~bool_mask(pc.starts_with(head, "[LINE]")) if len(loose) else np.zeros(0, bool)
    continues = after_msg & nonempty & not_title
    torn = np.zeros(len(loose), dtype=bool)
    if last and len(loose) and loose[-1] == n - 1 and not data.endswith(b"\n"):
        torn[-1] = continues[-1] and _TORN.match(head[-1].as_py()) is not None
        continues &= ~torn
    cont_idx = np.sort(np.concatenate([np.flatnonzero(inside[:cut]), loose[continues]]))
    rejected = loose[~continues & ~torn & (c.line_no[loose] > 3)]
    if len(rejected):
        blank = bool_mask(pc.equal(pc.utf8_trim_whitespace(lines.strings(rejected)), ""))
        rejected = rejected[~blank]
    owner = msg_idx[np.searchsorted(msg_idx, cont_idx, side="right") - 1] if len(msg_idx) else cont_idx
    messages = _messages(c, msg_idx, cont_idx, owner, day, ctx)
    rejected = np.concatenate([rejected, loose[torn]])
    reasons = [_NOT_A_LINE if d >= 0 else _BEFORE_DAY for d in day[rejected].tolist()]
    reasons[len(reasons) - int(torn.sum()) :] = [_TORN_REASON] * int(torn.sum())
    quarantine = build_quarantine(
        ctx, c.line_no[rejected].tolist(), reasons, lines.strings(rejected).to_pylist()
    )
    state.started |= len(msg_idx) > 0
    state.day = int(day[cut]) if cut < n else int(day[-1]) if n else state.day
    state.carry = data[int(lines.start[cut]) :] if cut < n else b""
    state.line_no += cut
    return ParseBatch(messages, quarantine)


def _messages(
    c: _Lines,
    msg_idx: np.ndarray,
    cont_idx: np.ndarray,
    owner: np.ndarray,
    day: np.ndarray,
    ctx: ParseContext,
) -> pa.Table:
    lines = c.lines
    named = c.speaker_b[msg_idx] >= 0
    speaker = slice_strings(
        lines, c.speaker_a[msg_idx], np.where(named, c.speaker_b[msg_idx], c.speaker_a[msg_idx])
    )
    speaker = pc.if_else(pa.array(named), speaker, pa.scalar(None, pa.string()))
    texts = message_texts(lines, msg_idx, c.text_a[msg_idx], lines.end[msg_idx], cont_idx, owner)
    multi = np.isin(msg_idx, owner) & named
    if multi.any():  # a quoted text over several lines: its quotes go, a doubled quote is one
        picked = texts.filter(pa.array(multi)).to_pylist()
        fixed = [
            t[1:-1].replace('""', '"') if len(t) > 1 and t[0] == t[-1] == '"' and "\n" in t else t
            for t in picked
        ]
        texts = pc.replace_with_mask(texts, pa.array(multi), pa.array(fixed, pa.string()))
    seconds = day[msg_idx] * 86_400 + c.minute[msg_idx] * 60
    return build_messages(
        ctx,
        SOURCE,
        local_to_utc(seconds, ctx.timezone),
        speaker,
        texts,
        _kinds(texts, speaker),
        c.line_no[msg_idx],
    )


def _kinds(texts: pa.Array, speaker: pa.Array) -> pa.Array:
    """`system` without a speaker, `call` for a call notice, media by its placeholder, else `text`."""
    placeholder = pc.index_in(pc.utf8_trim_whitespace(texts), pa.array(list(_KINDS), pa.string()))
    media = pa.array(list(_KINDS.values()), pa.string()).take(pc.fill_null(placeholder, 0))
    kinds = pc.if_else(pc.is_valid(placeholder), media, "text")
    kinds = pc.if_else(pc.starts_with(texts, "☎"), "call", kinds)
    return pc.if_else(pc.is_valid(speaker), kinds, "system")
