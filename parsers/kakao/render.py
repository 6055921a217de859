"""Render conversations as KakaoTalk exports of any variant: the parser's inverse.

Used by the round-trip property tests, the benchmark's large-export generator and the bundled
sample. Layouts follow ../shared/KAKAO_FORMATS.md.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final

WEEKDAYS_KO: Final = ("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일")
WEEKDAYS_EN: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS_FULL: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class Line:
    """One message or system event to render. `speaker` None means a system event."""

    ts: datetime  # local wall-clock time, naive
    speaker: str | None
    text: str


@dataclass(frozen=True)
class RenderOptions:
    """Layout choices that real exports vary on."""

    room: str = "홍길동"
    saved_at: datetime = datetime(2024, 12, 31, 22, 15, 40)
    clock24: bool = False
    #: Records end in CRLF, continuation lines in LF (raw mobile/PC bytes); False: LF everywhere.
    crlf: bool = True
    #: iOS English newer layout: "Feb 1, 2026 at 20:35".
    ios_at: bool = False


def _ko_time(ts: datetime, clock24: bool) -> str:
    if clock24:
        return f"{ts.hour}:{ts.minute:02d}"
    return f"{'오전' if ts.hour < 12 else '오후'} {ts.hour % 12 or 12}:{ts.minute:02d}"


def _en_time(ts: datetime, clock24: bool, lower: bool = False) -> str:
    if clock24:
        return f"{ts.hour}:{ts.minute:02d}"
    ampm = "AM" if ts.hour < 12 else "PM"
    return f"{ts.hour % 12 or 12}:{ts.minute:02d} {ampm.lower() if lower else ampm}"


def _ko_date(ts: datetime) -> str:
    return f"{ts.year}년 {ts.month}월 {ts.day}일"


def _stamp(fmt: str, ts: datetime, o: RenderOptions) -> str:
    if fmt == "android_ko":
        return f"{_ko_date(ts)} {_ko_time(ts, o.clock24)}"
    if fmt == "android_en":
        return f"{MONTHS_FULL[ts.month - 1]} {ts.day}, {ts.year}, {_en_time(ts, o.clock24)}"
    if fmt == "android_en_gb":
        return f"{ts.day} {MONTHS_FULL[ts.month - 1]} {ts.year}, {_en_time(ts, o.clock24, lower=True)}"
    if fmt == "ios_ko":
        return f"{ts.year}. {ts.month}. {ts.day}. {_ko_time(ts, o.clock24)}"
    if fmt == "ios_en":
        at = " at" if o.ios_at else ""
        return f"{MONTHS_FULL[ts.month - 1][:3]} {ts.day}, {ts.year}{at} {_en_time(ts, o.clock24)}"
    raise ValueError(f"no stamp layout for {fmt}")


def _day_marker(fmt: str, ts: datetime, o: RenderOptions) -> str | None:
    if fmt == "pc_ko":
        return f"--------------- {_ko_date(ts)} {WEEKDAYS_KO[ts.weekday()]} ---------------"
    if fmt == "pc_en":
        date = f"{WEEKDAYS_EN[ts.weekday()]}, {MONTHS_FULL[ts.month - 1]} {ts.day}, {ts.year}"
        return f"--------------- {date} ---------------"
    if fmt in ("android_ko", "android_en", "android_en_gb"):
        return _stamp(fmt, ts, o)
    if fmt == "ios_ko":
        return f"{_ko_date(ts)} {WEEKDAYS_KO[ts.weekday()]}"
    if fmt == "ios_en":
        return f"{WEEKDAYS_EN[ts.weekday()]}, {MONTHS_FULL[ts.month - 1]} {ts.day}, {ts.year}"
    return None


def _header(fmt: str, o: RenderOptions) -> list[str]:
    s = o.saved_at
    if fmt == "pc_ko":
        return [f"{o.room} 님과 카카오톡 대화", f"저장한 날짜 : {s:%Y-%m-%d %H:%M:%S}", ""]
    if fmt == "pc_en":
        return [f"{o.room} with KakaoTalk Chats", f"Date Saved : {s:%Y-%m-%d %H:%M:%S}", ""]
    if fmt == "android_ko":
        return [f"{o.room} 님과 카카오톡 대화", f"저장한 날짜 : {_stamp(fmt, s, o)}", ""]
    if fmt in ("android_en", "android_en_gb"):
        return [f"KakaoTalk Chats with {o.room}", f"Date Saved : {_stamp(fmt, s, o)}", ""]
    if fmt == "ios_ko":
        return [f"Talk_{s.year}.{s.month}.{s.day} {s:%H:%M}-1.txt", f"저장한 날짜 : {_stamp(fmt, s, o)}", ""]
    if fmt == "ios_en":
        return [f"Talk_{s.year}.{s.month}.{s.day} {s:%H:%M}-1.txt", f"Date Saved : {_stamp(fmt, s, o)}", ""]
    raise ValueError(f"unknown format {fmt}")


def _record(fmt: str, line: Line, o: RenderOptions) -> str:
    if fmt in ("pc_ko", "pc_en"):
        if line.speaker is None:
            return line.text  # Windows writes events without a time
        clock = _ko_time(line.ts, o.clock24) if fmt == "pc_ko" else _en_time(line.ts, o.clock24)
        return f"[{line.speaker}] [{clock}] {line.text}"
    stamp = _stamp(fmt, line.ts, o)
    if line.speaker is None:
        sep = ": " if fmt.startswith("ios") else ", "
        return f"{stamp}{sep}{line.text}"
    return f"{stamp}, {line.speaker} : {line.text}"


def iter_export_lines(fmt: str, lines: Iterable[Line], o: RenderOptions | None = None) -> Iterator[str]:
    """Yield the export's text in pieces (each ends with its line terminator)."""
    o = o or RenderOptions()
    rec_end = "\r\n" if o.crlf else "\n"
    for head in _header(fmt, o):
        yield head + rec_end
    current_day = None
    for line in lines:
        day = line.ts.date()
        if day != current_day:
            marker = _day_marker(fmt, line.ts, o)
            if marker is not None:
                if current_day is not None and fmt in ("pc_ko", "pc_en"):
                    yield rec_end  # Windows leaves a blank line before each date separator
                yield marker + rec_end
            current_day = day
        yield _record(fmt, line, o) + rec_end


def render_export(fmt: str, lines: Iterable[Line], o: RenderOptions | None = None) -> str:
    """The whole export as text (line variants) or CSV (`mac_csv`)."""
    if fmt == "mac_csv":
        return render_csv(lines)
    return "".join(iter_export_lines(fmt, lines, o))


def render_csv(lines: Iterable[Line]) -> str:
    """The macOS CSV export: Date,User,Message, fields quoted like the app does."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["Date", "User", "Message"])
    for line in lines:
        writer.writerow([f"{line.ts:%Y-%m-%d %H:%M:%S}", line.speaker or "", line.text])
    return buffer.getvalue()
