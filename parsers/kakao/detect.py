"""Detect an export's text encoding and its KakaoTalk variant from content, never from the name."""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass
from functools import cache
from typing import Final

from parsers.errors import InputError
from parsers.kakao.formats import CSV_FORMAT_NAME, CSV_HEADERS, FORMATS_BY_NAME, LINE_FORMATS, LineFormat

#: Bytes read from the head of a file to decide encoding and variant.
SAMPLE_BYTES: Final = 256 * 1024
#: Share of undecodable characters in the head above which no encoding is accepted.
MAX_UNDECODABLE_SHARE: Final = 0.01
#: Lines of the sample that the variant vote looks at.
SAMPLE_LINES: Final = 400

_BOMS: Final[tuple[tuple[bytes, str], ...]] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class Encoding:
    """A detected text encoding; `bom` bytes are skipped before decoding."""

    name: str
    bom: bytes = b""


@dataclass(frozen=True)
class Detection:
    """What the head of an export says about the whole file."""

    format_name: str
    room: str | None
    #: Records end in CRLF while continuation lines inside a message end in a bare LF.
    crlf_records: bool


def detect_encoding(head: bytes, path: str) -> Encoding:
    """Decide the encoding of a whole file from its first bytes (BOM, UTF-16 shape, strict decodes)."""
    if not head:
        raise InputError(path, "empty file")
    for bom, name in _BOMS:
        if head.startswith(bom):
            return Encoding(name, bom)
    if b"\x00" in head:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
            return Encoding("utf-16-le")
        if even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
            return Encoding("utf-16-be")
        raise InputError(path, "binary file, not a KakaoTalk text or CSV export")
    # The encoding that decodes the head with the fewest errors wins; a stray bad byte in a UTF-8
    # file must not make the whole file CP949 (its messages are quarantined one by one instead).
    scored = []
    for rank, name in enumerate(("utf-8", "cp949")):
        text = codecs.getincrementaldecoder(name)(errors="replace").decode(head, final=False)
        errors = text.count("\ufffd")
        scored.append((errors, rank, name, len(text)))
    errors, _, name, length = min(scored)
    if errors <= MAX_UNDECODABLE_SHARE * max(length, 1) and (name != "cp949" or _reads_as_korean(head)):
        return Encoding(name)
    western = codecs.decode(head, "cp1252", errors="replace")
    if name == "cp949" and western.count("\ufffd") <= MAX_UNDECODABLE_SHARE * len(western):
        return Encoding("cp1252")
    raise InputError(path, "unknown text encoding (not UTF-8, UTF-16, CP949/EUC-KR or Windows-1252)")


def _reads_as_korean(head: bytes) -> bool:
    """Whether CP949's reading of the head is Korean text: most of its two-byte characters in KS X 1001.

    Real Korean text keeps to the 2,350 common syllables (both bytes 0xA1-0xFE); a Western file
    (cp1252 `Ångström`) read as CP949 falls in the extension area (`흋`) or does not decode.
    """
    text = codecs.getincrementaldecoder("cp949")(errors="replace").decode(head, final=False)
    wide = [c.encode("cp949") for c in text if ord(c) > 0x7F and c != "\ufffd"]
    common = sum(1 for b in wide if len(b) == 2 and b[0] >= 0xA1 and b[1] >= 0xA1)
    return common >= 0.5 * (len(wide) + text.count("\ufffd"))


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _strip_line(line: str) -> str:
    return line.rstrip("\r")


def detect_format(sample: str, path: str, forced: str | None = None) -> Detection:
    """Pick the variant whose record layout matches most lines of the sample.

    `forced` skips the vote (the CLI's `--format`), but the room title is still read.
    """
    raw_lines = sample.split("\n")[:SAMPLE_LINES]
    lines = [_strip_line(line) for line in raw_lines]
    crlf = _crlf_records(raw_lines)
    first = next((line for line in lines if line.strip()), "")
    if forced == CSV_FORMAT_NAME or (forced is None and _is_csv_header(first)):
        return Detection(CSV_FORMAT_NAME, None, crlf_records=False)
    if forced is not None:
        fmt = FORMATS_BY_NAME[forced]
        return Detection(fmt.name, _room(fmt, lines), crlf)
    best: tuple[int, int, LineFormat] | None = None
    for fmt in LINE_FORMATS:
        record = _compiled(fmt.record)
        records = sum(1 for line in lines if record.match(line))
        headers = sum(
            1 for line in lines[:8] for p in (*fmt.titles, *fmt.preamble) if _compiled(p).match(line)
        )
        if fmt.day_marker:
            marker = _compiled(fmt.day_marker)
            headers += sum(1 for line in lines if marker.match(line))
        score = (records, headers, fmt)
        # Records decide; an export with no message yet (only events) is known by its headers.
        if (records or headers >= 2) and (best is None or score[:2] > best[:2]):
            best = score
    if best is None:
        raise InputError(
            path,
            f"not a recognised KakaoTalk export (no known message layout in the first {len(lines)} lines)",
        )
    fmt = best[2]
    return Detection(fmt.name, _room(fmt, lines), crlf)


def _room(fmt: LineFormat, lines: list[str]) -> str | None:
    for line in lines[:5]:
        for pattern in fmt.titles:
            match = _compiled(pattern).match(line.lstrip("\ufeff"))
            if match:
                return match.group("room").strip()
    return None


def _is_csv_header(line: str) -> bool:
    try:
        cells = next(csv.reader([line.lstrip("\ufeff")]))
    except (csv.Error, StopIteration):
        return False
    return tuple(cell.strip() for cell in cells) in CSV_HEADERS


def _crlf_records(raw_lines: list[str]) -> bool:
    # The last element has no terminator of its own; judge on the rest.
    terminated = raw_lines[:-1]
    if not terminated:
        return False
    with_cr = sum(1 for line in terminated if line.endswith("\r"))
    return with_cr > 0.5 * len(terminated)
