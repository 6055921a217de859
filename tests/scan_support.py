"""Scan every file under some folders for planted values, the way an auditor would.

Each file is read as bytes and, where it can be, also decoded: Parquet (every cell, nested too),
JSON (every string, base64-looking ones decoded too, as Prefect's result files hold base64
pickles), gzip streams. A value is found if its text appears in any view, or its characters
with separators dropped (a phone written another way) appear in a view of *strings* (numbers,
such as the floats of a vector, are left out there: their digit runs would match by chance).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow.parquet as pq

_SEPARATORS = re.compile(r"[\s\-+()]")
_B64 = re.compile(r"^[A-Za-z0-9+/=\s]{24,}$")


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
        if _B64.match(value):
            with contextlib.suppress(binascii.Error, ValueError):
                yield base64.b64decode(value, validate=False).decode("utf-8", "replace")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")


def views(path: Path) -> Iterator[tuple[str, bool]]:
    """Every readable rendering of one file's content, and whether it holds strings only."""
    data = path.read_bytes()
    structured = False
    if data[:4] == b"PAR1":
        try:
            table = pq.read_table(io.BytesIO(data))
            structured = True
            yield from ((t, True) for t in _strings(table.to_pylist()))
        except Exception:  # a half-written file: the raw bytes are scanned below
            pass
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):  # not a whole stream: raw bytes are scanned below
            yield gzip.decompress(data).decode("utf-8", "replace"), False
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            parsed = json.loads(data)
            structured = True
            yield from ((t, True) for t in _strings(parsed))
        except ValueError:
            pass
    yield data.decode("utf-8", "replace"), not structured


def _squash(text: str) -> str:
    return _SEPARATORS.sub("", text)


def find_values(
    roots: Iterable[Path], values: Iterable[str], allowed: Iterable[Path] = ()
) -> tuple[int, list[tuple[str, str]]]:
    """(files scanned, [(file, value)] found) under `roots`, skipping files under `allowed`."""
    # A JSON column may hold a value escaped (`\uc625\uc21c`): that spelling counts as found too.
    wanted = [(v, _squash(v)) for v in values]
    wanted += [(e, _squash(e)) for v in values if (e := json.dumps(v)[1:-1]) != v]
    allowed_dirs = [a.resolve() for a in allowed]
    seen: dict[Path, int] = {}
    found: list[tuple[str, str]] = []
    # A live server (the zones scan runs with search up) writes a temp file and renames it into
    # place: a file may vanish between listing and reading. Passes repeat until every file was
    # read at its current version, so content that moved into a renamed file is never missed.
    for _ in range(10):
        pending = []
        for root in roots:
            if root.exists():
                pending += [p for p in root.rglob("*") if p.is_file()]
        changed = False
        for path in sorted(pending):
            resolved = path.resolve()
            if any(resolved.is_relative_to(a) for a in allowed_dirs):
                continue
            try:
                stamp = path.stat().st_mtime_ns
                if seen.get(path) == stamp:
                    continue
                rendered = list(views(path))
            except FileNotFoundError:
                changed = True
                continue
            changed |= path in seen
            seen[path] = stamp
            texts = [t for t, _ in rendered]
            squashed = [_squash(t) for t, strings_only in rendered if strings_only]
            for value, squash in wanted:
                hit = any(value in t for t in texts) or any(squash in s for s in squashed)
                if hit and (str(path), value) not in found:
                    found.append((str(path), value))
        if not changed:
            break
    scanned = len(seen)
    return scanned, found


# Values of owner A's only (the bundled sample, which B uploads, has personal numbers of its own).
PLANTED = [
    ("새 번호 010-4821-3377 저장해", "010-4821-3377"),
    ("급하면 01048213377로 전화해", "01048213377"),
    ("해외에선 +82 10-4821-3377 로 걸어", "+82 10-4821-3377"),
    ("집 전화는 02-987-6543 이야", "02-987-6543"),
    ("이모 번호 031 654 9870", "031 654 9870"),
    ("주민번호 850315-2345678 맞지?", "850315-2345678"),
    ("카드번호 4539 1488 0343 6467 불러줄게", "4539 1488 0343 6467"),
    ("이 카드 5105-1051-0510-5100 써", "5105-1051-0510-5100"),
    ("국민은행 654321-09-876543 로 보내", "654321-09-876543"),
    ("신한 110-987-654321 이야", "110-987-654321"),
    ("카카오뱅크 3333098765432 으로 입금해줘", "3333098765432"),
    ("메일은 grandma.lee+home@example.org 로 보내", "grandma.lee+home@example.org"),
    ("주소는 서울특별시 마포구 월드컵북로 396, 3동 201호 야", "월드컵북로 396"),
    ("옛날 집 연남동 239-12번지 기억나?", "239-12번지"),
]

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "kakao_android_ko.txt"


def export_with_planted_values(path: Path) -> list[str]:
    """The sample export plus a day on which mom and her son say every planted sentence."""
    lines = ["", "2024년 6월 8일 오전 9:00"]
    minute = 0
    for round_ in range(3):
        for sentence, _ in PLANTED:
            for speaker in ("엄마", "나"):
                minute += 1
                hour, mins = divmod(minute, 60)
                lines.append(f"2024년 6월 8일 오후 {1 + hour}:{mins:02d}, {speaker} : {sentence} ({round_})")
    path.write_text(SAMPLE.read_text(encoding="utf-8-sig") + "\n".join(lines) + "\n", encoding="utf-8")
    return [value for _, value in PLANTED]
