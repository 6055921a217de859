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
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa

from parsers.base import ParseBatch, ParseContext, build_messages, build_quarantine, local_to_utc

SOURCE = "line_txt"
_BATCH = 20_000
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
    "[File]": "file", "[파일]": "file", "[ファイル]": "file",
    "[Location]": "location", "[위치정보]": "location", "[位置情報]": "location",
    "[Contact]": "contact", "[연락처]": "contact", "[連絡先]": "contact",
}  # fmt: skip


def sniff(sample: str) -> bool:
    """Whether a text starts like a LINE chat history (its `[LINE]` title)."""
    return sample.lstrip("\ufeff").lstrip().startswith("[LINE]")


def _day(line: str) -> tuple[int, int, int] | None:
    if "\t" in line:
        return None
    match = _YMD.search(line) or _MDY.search(line)
    if match is None:
        return None
    try:
        return datetime(int(match["y"]), int(match["m"]), int(match["d"])).timetuple()[:3]
    except ValueError:
        return None


def _clock(text: str) -> tuple[int, int] | None:
    match = _TIME.match(text.strip())
    if match is None:
        return None
    hour, minute = int(match["h"]), int(match["mi"])
    marker = (match["pre"] or match["post"] or "").upper()
    if marker in ("PM", "오후", "午後"):
        hour = hour % 12 + 12
    elif marker in ("AM", "오전", "午前"):
        hour %= 12
    return (hour, minute) if hour < 24 and minute < 60 else None


@dataclass
class _Open:
    line_no: int
    seconds: int
    speaker: str | None
    parts: list[str] = field(default_factory=list)
    quoted: bool = False


def _kind(text: str, speaker: str | None) -> str:
    if speaker is None:
        return "system"
    if text.startswith("☎"):
        return "call"
    return _KINDS.get(text.strip(), "text")


def parse_lines(lines: Iterable[str], ctx: ParseContext, batch: int = _BATCH) -> Iterator[ParseBatch]:
    """Messages and quarantined lines of a LINE chat history, streamed in batches."""
    rows: list[_Open] = []
    rejected: tuple[list[int], list[str], list[str]] = ([], [], [])
    day: tuple[int, int, int] | None = None
    current: _Open | None = None
    for line_no, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if current is not None and current.quoted:  # inside a quoted, multi-line text
            current.parts.append(line)
            if _closes(line):
                current.quoted = False
            continue
        found = _day(line) if line_no > 2 else None  # line 2 is the saved-on time, not a day
        if found is not None:
            day = found
            continue
        fields = line.split("\t", 2)
        clock = _clock(fields[0]) if len(fields) >= 2 else None
        if clock is None or day is None:
            if current is not None and line and not line.startswith(("[LINE]",)):
                current.parts.append(line)  # an unquoted continuation (older exports)
            elif line.strip() and line_no > 3:
                rejected[0].append(line_no)
                rejected[1].append(
                    "not a message, day or notice line" if day else "a line before the first day"
                )
                rejected[2].append(line)
            continue
        seconds = int((datetime(*day, *clock) - datetime(1970, 1, 1)).total_seconds())
        speaker, text = (fields[1], fields[2]) if len(fields) == 3 else (None, fields[1])
        current = _Open(line_no, seconds, speaker, [text])
        if speaker is not None and text.startswith('"') and not _closes(text[1:]):
            current.quoted = True
        rows.append(current)
        if len(rows) >= batch:
            yield _batch(rows[:-1], rejected, ctx)
            rows, rejected = rows[-1:], ([], [], [])
    yield _batch(rows, rejected, ctx)


def _closes(line: str) -> bool:
    """Whether a line ends a quoted text (an odd number of quotes at its end)."""
    tail = len(line) - len(line.rstrip('"'))
    return tail % 2 == 1


def _text(message: _Open) -> str:
    text = "\n".join(message.parts)
    if message.speaker is not None and text.startswith('"') and text.endswith('"') and "\n" in text:
        text = text[1:-1].replace('""', '"')
    return text


def _batch(
    rows: list[_Open], rejected: tuple[list[int], list[str], list[str]], ctx: ParseContext
) -> ParseBatch:
    texts = [_text(r) for r in rows]
    table = build_messages(
        ctx,
        SOURCE,
        local_to_utc(np.array([r.seconds for r in rows], dtype=np.int64), ctx.timezone),
        pa.array([r.speaker for r in rows], pa.string()),
        pa.array(texts, pa.string()),
        pa.array([_kind(t, r.speaker) for r, t in zip(rows, texts, strict=True)], pa.string()),
        np.array([r.line_no for r in rows], dtype=np.int64),
    )
    return ParseBatch(table, build_quarantine(ctx, *rejected))
