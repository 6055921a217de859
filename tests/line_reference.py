"""The per-line LINE reader the vectorised one replaced, kept as the oracle of a differential test.

Frozen: it reads one line at a time with Python `re`, exactly as `parsers/line/export.py` did before
it was vectorised; `tests/test_line.py` checks that both give the same rows on generated histories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from parsers.line.export import _KINDS, _MDY, _OPENS, _TIME, _TORN, _YMD


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


def reference_rows(
    lines: Iterable[str],
) -> tuple[list[tuple[int, int, str | None, str, str]], list[tuple[int, str, str]]]:
    """Messages (line, local seconds, speaker, text, kind) and quarantined lines (line, reason, raw)."""
    lines = list(lines)
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
            torn = line_no == len(lines) and not raw.endswith("\n") and _TORN.match(line) is not None
            if current is not None and line and not line.startswith(("[LINE]",)) and torn:
                rejected[0].append(line_no)
                rejected[1].append("truncated last line")
                rejected[2].append(line)
            elif current is not None and line and not line.startswith(("[LINE]",)):
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
        if speaker is not None and re.match(_OPENS, text) and _closed_before_a_message(lines[line_no:]):
            current.quoted = True
        rows.append(current)
    messages = [(m.line_no, m.seconds, m.speaker, _text(m), _kind(_text(m), m.speaker)) for m in rows]
    return messages, list(zip(*rejected, strict=True))


def _strong(line: str) -> bool:
    fields = line.split("\t", 2)
    return len(fields) == 3 and _clock(fields[0]) is not None


def _closed_before_a_message(following: list[str]) -> bool:
    """Whether a line ending a quote comes before the next message line (which cannot end it)."""
    for raw in following:
        line = raw.rstrip("\r\n")
        if _strong(line):
            return False
        if _closes(line):
            return True
    return False


def _closes(line: str) -> bool:
    """Whether a line ends a quoted text (an odd number of quotes at its end)."""
    tail = len(line) - len(line.rstrip('"'))
    return tail % 2 == 1


def _text(message: _Open) -> str:
    text = "\n".join(message.parts)
    if message.speaker is not None and text.startswith('"') and text.endswith('"') and "\n" in text:
        text = text[1:-1].replace('""', '"')
    return text
