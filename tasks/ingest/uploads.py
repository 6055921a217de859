"""Ingest one uploaded export into the lake: raw copy, canonical Message Parquet, quarantine.

Plain functions (the Prefect tasks wrap them); every object name is derived from content
hashes, so re-running an ingest rewrites the same objects and never duplicates rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from infra.faults import fault_point
from infra.leases import check_fences
from infra.settings import Settings
from infra.storage import Storage
from infra.version import CODE_VERSION
from parsers.base import ParseBatch, ParseContext
from parsers.errors import InputError
from parsers.exports import READ, ExportInfo, inspect_export, iter_batches
from parsers.kakao.archive import (
    MAYBE_CHAT_SUFFIXES,
    ArchiveLimits,
    AttachmentMatcher,
    extract_member,
    is_zip,
    plan_archive,
    safe_member_path,
)
from parsers.kakao.export import check_readable, file_sha256
from schemas.message import MESSAGE_SCHEMA, QUARANTINE_SCHEMA
from schemas.names import validate_owner


@dataclass(frozen=True)
class ChatFile:
    """One chat file to parse (the upload itself, or a member of a zip upload)."""

    path: Path
    display_name: str


@dataclass
class Upload:
    """An upload opened for parsing: its chat files, media members and rejected members."""

    path: Path
    sha256: str
    chats: list[ChatFile]
    media: list[tuple[PurePosixPath, Path]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def upload_id(self) -> str:
        """Content-derived id: the same bytes uploaded twice are the same upload."""
        return self.sha256[:16]


@dataclass
class FileSummary:
    """Per chat file results."""

    file: str
    format: str
    source: str
    encoding: str
    room: str | None
    conversation_id: str
    messages: int = 0
    quarantined: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    by_kind: dict[str, int] = field(default_factory=dict)
    by_speaker: dict[str, int] = field(default_factory=dict)
    messages_uri: str | None = None
    messages_key: str | None = None
    #: What the user should know about how the file was read (a date order the file cannot decide).
    notes: list[str] = field(default_factory=list)


@dataclass
class IngestSummary:
    """What an ingest did; printed by the CLI and stored beside the raw upload."""

    owner_id: str
    upload_id: str
    file: str
    sha256: str
    files: list[FileSummary]
    media: int
    raw_uri: str
    quarantine_uri: str
    quarantined: int
    code_version: str = CODE_VERSION
    resumed: bool = False  # True: found complete from an earlier run, nothing redone

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestSummary:
        """Read back what `to_dict` stored in `_ingest.json`."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["files"] = [FileSummary(**f) for f in data.get("files", [])]
        return cls(**fields)

    @property
    def messages(self) -> int:
        """Messages written over all chat files."""
        return sum(f.messages for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["messages"] = self.messages
        return data


@contextlib.contextmanager
def open_upload(path: Path, display_name: str, limits: ArchiveLimits) -> Iterator[Upload]:
    """Open a plain export or a zip export; zip members are extracted to a temp folder."""
    check_readable(path, display_name)
    sha = file_sha256(path)
    if not is_zip(path):
        yield Upload(path, sha, [ChatFile(path, display_name)])
        return
    with tempfile.TemporaryDirectory(prefix="rememberme-zip-") as tmp:
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(display_name, f"corrupt zip archive ({exc})") from None
        with zf:
            plan = plan_archive(zf, display_name, limits)
            upload = Upload(path, sha, [], rejected=list(plan.rejected))
            for index, info in enumerate(plan.chats):
                rel = safe_member_path(info.filename)
                assert rel is not None  # vetted by plan_archive
                local = extract_member(zf, info, Path(tmp) / "chats" / str(index) / rel.name, display_name)
                upload.chats.append(ChatFile(local, f"{display_name}!{info.filename}"))
            for info in plan.media:
                rel = safe_member_path(info.filename)
                assert rel is not None
                upload.media.append((rel, extract_member(zf, info, Path(tmp) / "media" / rel, display_name)))
        yield upload


def ingest_export(
    path: Path,
    owner_id: str,
    storage: Storage,
    settings: Settings,
    forced_format: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    display_name: str | None = None,
    date_order: str | None = None,
) -> IngestSummary:
    """Store the raw upload, write its messages and quarantine to the lake, return a summary.

    An upload already ingested completely by this code version (its `_ingest.json` marker and
    message parts are there) is not parsed again: the stored summary comes back, `resumed=True`
    (unless a format or a date order is forced: the user asks for another reading).
    """
    owner_id = validate_owner(owner_id)
    name = display_name or path.name
    if forced_format is None and date_order is None:
        check_readable(path, name)
        done = completed_ingest(storage, owner_id, file_sha256(path)[:16])
        if done is not None:
            return done
    limits = ArchiveLimits(
        settings.max_archive_bytes, settings.max_archive_ratio, settings.max_archive_members
    )
    with open_upload(path, name, limits) as upload:
        # Detect every chat file before writing anything: bad input leaves the lake untouched.
        infos = []
        for chat in upload.chats:
            try:
                infos.append(
                    inspect_export(
                        chat.path,
                        forced_format,
                        chat.display_name,
                        upload.sha256 if chat.path == upload.path else None,
                        date_order,
                    )
                )
            except InputError as exc:
                if chat.path == upload.path or not chat.path.name.lower().endswith(MAYBE_CHAT_SUFFIXES):
                    raise
                upload.rejected.append(
                    (chat.display_name.partition("!")[2], f"not a chat export: {exc.cause}")
                )
        if not infos:
            raise InputError(name, f"holds no chat export ({READ} are read)")
        raw_prefix = f"raw/{owner_id}/{upload.upload_id}"
        media_keys = {rel.name: f"{raw_prefix}/media/{rel.as_posix()}" for rel, _ in upload.media}
        media_uris = {name: storage.uri(key) for name, key in media_keys.items()}
        matcher = _matcher(media_uris, settings.kakao_timezone) if media_uris else None

        quarantine_parts: list[pa.Table] = []
        files = []
        for info in infos:
            ctx = ParseContext(
                owner_id,
                upload.upload_id,
                info.display_name,
                owner_file_key(owner_id, info.sha256),
                info.conversation_id,
                settings.kakao_timezone,
            )
            summary, quarantine = _write_messages(info, ctx, storage, settings, matcher, on_progress)
            files.append(summary)
            quarantine_parts.extend(quarantine)
            fault_point("ingest.messages_written")
        for member, reason in upload.rejected:
            quarantine_parts.append(_rejected_member(owner_id, upload.upload_id, name, member, reason))

        quarantine = (
            pa.concat_tables(quarantine_parts) if quarantine_parts else QUARANTINE_SCHEMA.empty_table()
        )
        quarantine_key = f"quarantine/{owner_id}/{upload.upload_id}.parquet"
        with storage.open_write(quarantine_key) as handle:
            pq.write_table(quarantine, handle, compression="zstd")

        # Raw objects go in after the parse succeeded: a refused upload leaves nothing behind.
        for rel, local in upload.media:
            key = f"{raw_prefix}/media/{rel.as_posix()}"
            if not storage.exists(key):
                storage.put_file(key, local)
        raw_key = f"{raw_prefix}/{PurePosixPath(name).name}"
        if not storage.exists(raw_key):
            storage.put_file(raw_key, path)
        fault_point("ingest.raw_stored")
        result = IngestSummary(
            owner_id=owner_id,
            upload_id=upload.upload_id,
            file=name,
            sha256=upload.sha256,
            files=files,
            media=len(upload.media),
            raw_uri=storage.uri(raw_key),
            quarantine_uri=storage.uri(quarantine_key),
            quarantined=quarantine.num_rows,
        )
        # Written last: its presence marks a complete ingest.
        check_fences()
        with storage.open_write(f"{raw_prefix}/_ingest.json") as handle:
            handle.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2).encode("utf-8"))
        return result


def completed_ingest(storage: Storage, owner_id: str, upload_id: str) -> IngestSummary | None:
    """The summary of a complete ingest of `upload_id` by this code version, if there is one."""
    marker = f"raw/{owner_id}/{upload_id}/_ingest.json"
    if not storage.exists(marker):
        return None
    summary = IngestSummary.from_dict(json.loads(storage.read_bytes(marker)))
    if summary.code_version != CODE_VERSION:
        return None
    for f in summary.files:
        if f.messages and not (f.messages_key and storage.exists(f.messages_key)):
            return None  # a part was removed since (forget): redo
    summary.resumed = True
    return summary


def owner_file_key(owner_id: str, file_sha256: str) -> str:
    """The key message ids derive from: the file's digest scoped to its owner.

    The same file uploaded by two owners gives two sets of ids (two search documents, never one
    overwritten by the other); the same owner uploading it again gives the same ids.
    """
    return hashlib.sha256(f"{owner_id}|{file_sha256}".encode()).hexdigest()


def conversation_id(owner_id: str, info: ExportInfo, first: dict[str, Any] | None) -> str:
    """The room's id, decided from content: its title plus its first message, within the owner.

    Two rooms that share a title (two "가족" group chats) start with different messages, so they
    stay two conversations; a later export of the same room starts with the same first message
    (an export carries the room's history from its start), so it keeps its id. An export without
    a title is its own conversation.
    """
    room = info.detection.room
    if not room or first is None:
        return f"{info.family}-file-" + hashlib.sha256(f"{owner_id}|{info.sha256}".encode()).hexdigest()[:16]
    stamp = first["ts"].isoformat() if first.get("ts") is not None else ""
    seed = f"{owner_id}|{room}|{stamp}|{first.get('speaker') or ''}"
    return f"{info.family}-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16]


def _write_messages(
    info: ExportInfo,
    ctx: ParseContext,
    storage: Storage,
    settings: Settings,
    matcher: AttachmentMatcher | None,
    on_progress: Callable[[int], None] | None,
) -> tuple[FileSummary, list[pa.Table]]:
    summary = FileSummary(
        file=info.display_name,
        format=info.format_name,
        source=info.source,
        encoding=info.encoding.name,
        room=info.detection.room,
        conversation_id=info.conversation_id,
    )
    found = info.whatsapp
    if found is not None and not found.date_order_decided:
        other = "mdy" if found.date_order == "dmy" else "dmy"
        summary.notes.append(
            f"dates read as {found.date_order} (no date in the file tells day from month); "
            f"if they are {other}, ingest again with --date-order {other}"
        )
    kinds: Counter[str] = Counter()
    speakers: Counter[str] = Counter()
    quarantine: list[pa.Table] = []
    first: Any = None
    last: Any = None
    key = f"messages/owner={ctx.owner_id}/source={info.source}/{info.sha256[:16]}.parquet"
    conversation: str | None = None
    threads: set[str] = set()
    with storage.open_write(key) as handle:
        writer = None
        for batch in iter_batches(info, ctx, on_progress, settings.parse_chunk_bytes):
            table = _link_attachments(batch, matcher) if matcher else batch.messages
            if batch.quarantine.num_rows:
                quarantine.append(batch.quarantine)
            if table.num_rows == 0:
                continue
            if info.conversations_in_rows:  # a backup of many threads: each row names its own
                threads.update(table.column("conversation_id").to_pylist())
            else:
                if conversation is None:  # decided by the file's first message
                    conversation = conversation_id(ctx.owner_id, info, table.slice(0, 1).to_pylist()[0])
                    summary.conversation_id = conversation
                column = table.schema.get_field_index("conversation_id")
                ids = pa.repeat(pa.scalar(conversation, pa.string()), table.num_rows)
                table = table.set_column(column, table.schema.field(column), ids)
            if writer is None:
                writer = pq.ParquetWriter(handle, table.schema, compression="zstd")
            writer.write_table(table)
            summary.messages += table.num_rows
            _count(kinds, table.column("kind"))
            _count(speakers, table.column("speaker"))
            lo, hi = pc.min_max(table.column("ts")).values()
            first = lo.as_py() if first is None else min(first, lo.as_py())
            last = hi.as_py() if last is None else max(last, hi.as_py())
        if writer is None:
            writer = pq.ParquetWriter(handle, MESSAGE_SCHEMA, compression="zstd")
        writer.close()
    if threads:
        summary.notes.append(f"{len(threads)} conversations (one per thread)")
    summary.quarantined = sum(t.num_rows for t in quarantine)
    summary.by_kind = dict(kinds.most_common())
    summary.by_speaker = dict(speakers.most_common())
    zone = ZoneInfo(settings.kakao_timezone)
    summary.first_ts = first.astimezone(zone).isoformat() if first else None
    summary.last_ts = last.astimezone(zone).isoformat() if last else None
    summary.messages_uri = storage.uri(key)
    summary.messages_key = key
    return summary, quarantine


def _count(counter: Counter[str], column: pa.ChunkedArray) -> None:
    for entry in pc.value_counts(column).to_pylist():
        value = entry["values"]
        counter["(system)" if value is None else value] += entry["counts"]


def _matcher(media_uris: dict[str, str], timezone: str) -> AttachmentMatcher:
    zone = ZoneInfo(timezone)

    def local_seconds(stamp: datetime) -> int:
        return int(stamp.replace(tzinfo=zone).timestamp())

    return AttachmentMatcher(media_uris, local_seconds)


def _link_attachments(batch: ParseBatch, matcher: AttachmentMatcher) -> pa.Table:
    table = batch.messages
    if table.num_rows == 0:
        return table
    texts = table.column("text").to_pylist()
    kinds = table.column("kind").to_pylist()
    seconds = pc.divide(table.column("ts").cast(pa.int64()), 1_000_000).to_pylist()
    links = [matcher.match(t, k, s) for t, k, s in zip(texts, kinds, seconds, strict=True)]
    index = table.schema.get_field_index("attachment")
    return table.set_column(index, table.schema.field(index), pa.array(links, pa.string()))


def _rejected_member(owner_id: str, upload_id: str, name: str, member: str, reason: str) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "owner_id": owner_id,
                "upload_id": upload_id,
                "source_file": f"{name}!{member}",
                "line_no": 0,
                "reason": reason,
                "raw": member,
            }
        ],
        schema=QUARANTINE_SCHEMA,
    )
