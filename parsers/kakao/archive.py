"""Zip exports: a chat file (.txt/.csv) plus media. Unsafe members are refused, bombs are stopped.

Members with absolute paths, `..`, drive letters or symlink bits are never extracted (they are
reported back as rejected); the declared sizes are checked against a total budget and a
per-member compression-ratio cap before anything is read, and `zipfile` itself stops a member
that inflates past its declared size (CRC/size check).
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Final

from parsers.errors import InputError

CHAT_SUFFIXES: Final = (".txt", ".csv", ".json", ".xml", ".html")
#: Members that may be a chat export or something else an app put beside it (Telegram's and
#: Instagram's exports hold many JSON files, Telegram's HTML export pages that are not chats): one
#: that is not a chat export is skipped, with its reason.
MAYBE_CHAT_SUFFIXES: Final = (".json", ".xml", ".html")
_DRIVE = re.compile(r"^[A-Za-z]:")
# Media saved by the app are often named by their time: 20240705_150422.jpg, 2024-07-05-15-04-22.jpg.
_STAMP = re.compile(
    r"(20[0-9]{2})[-_.]?([01][0-9])[-_.]?([0-3][0-9])[-_ T]?"
    r"([0-2][0-9])[-_.:]?([0-5][0-9])[-_.:]?([0-5][0-9])"
)


@dataclass(frozen=True)
class ArchiveLimits:
    """Zip-bomb guards."""

    max_total_bytes: int
    max_ratio: int
    max_members: int


@dataclass(frozen=True)
class ArchivePlan:
    """What a zip export holds, after the safety checks."""

    chats: tuple[zipfile.ZipInfo, ...]
    media: tuple[zipfile.ZipInfo, ...]
    rejected: tuple[tuple[str, str], ...]  # (member name, reason)


def is_zip(path: Path) -> bool:
    """Whether the file is a zip archive (by content)."""
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it could escape the extraction folder."""
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or _DRIVE.match(normalized):
        return None
    parts = [p for p in normalized.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return PurePosixPath(*parts)


def plan_archive(zf: zipfile.ZipFile, display: str, limits: ArchiveLimits) -> ArchivePlan:
    """Classify members into chat files and media; refuse the archive if it looks like a bomb."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > limits.max_members:
        raise InputError(display, f"zip has {len(infos)} members (limit {limits.max_members})")
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        raise InputError(
            display, f"zip would inflate to {total} bytes (limit {limits.max_total_bytes}); refusing"
        )
    chats: list[zipfile.ZipInfo] = []
    media: list[zipfile.ZipInfo] = []
    rejected: list[tuple[str, str]] = []
    for info in infos:
        if safe_member_path(info.filename) is None:
            rejected.append((info.filename, "unsafe path in archive (absolute or '..')"))
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            rejected.append((info.filename, "symbolic link in archive"))
            continue
        if info.file_size > 1024 * 1024 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise InputError(
                display,
                f"zip member {info.filename!r} has compression ratio {ratio} "
                f"(limit {limits.max_ratio}); refusing a zip bomb",
            )
        name = PurePosixPath(info.filename).name
        if name.startswith("._") or "__MACOSX" in info.filename:
            continue  # macOS resource forks, not content
        (chats if name.lower().endswith(CHAT_SUFFIXES) else media).append(info)
    if not chats:
        raise InputError(display, "zip holds no chat file (.txt, .csv, .json, .xml or .html)")
    return ArchivePlan(tuple(chats), tuple(media), tuple(rejected))


def extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, display: str) -> Path:
    """Extract one (already vetted) member to `dest`, streaming."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zf.open(info) as src, dest.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        dest.unlink(missing_ok=True)
        raise InputError(display, f"zip member {info.filename!r} is corrupt ({exc})") from None
    return dest


def media_stamp(name: str) -> datetime | None:
    """The local time encoded in a media file name, when it has one."""
    match = _STAMP.search(name)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


class AttachmentMatcher:
    """Link media files to the messages that sent them.

    Rules, in order: the message text names the file (`파일: x.pdf`, or the bare file name); else
    a photo/video/voice/file message within `window_s` seconds of a time-stamped media name.
    Each media file is used once.
    """

    MEDIA_KINDS: Final = ("photo", "video", "voice", "file")

    def __init__(
        self, media: dict[str, str], local_seconds: Callable[[datetime], int], window_s: int = 90
    ) -> None:
        """`media` maps a member's base name to its lake URI."""
        self.by_name = dict(media)
        self.window_s = window_s
        self.stamped = sorted(
            (local_seconds(stamp), name) for name in media if (stamp := media_stamp(name)) is not None
        )
        self.used: set[str] = set()

    def match(self, text: str, kind: str, ts_seconds: int) -> str | None:
        """The URI of the media file for one message, or None."""
        if kind not in self.MEDIA_KINDS and kind != "text":
            return None
        named = text.split(": ", 1)[1].strip() if kind == "file" and ": " in text else text.strip()
        if named in self.by_name and named not in self.used:
            self.used.add(named)
            return self.by_name[named]
        if kind not in self.MEDIA_KINDS:
            return None
        best: tuple[int, str] | None = None
        for stamp, name in self.stamped:
            if name in self.used or abs(stamp - ts_seconds) > self.window_s:
                continue
            gap = abs(stamp - ts_seconds)
            if best is None or gap < best[0]:
                best = (gap, name)
        if best is None:
            return None
        self.used.add(best[1])
        return self.by_name[best[1]]
