"""JSON Lines landing files -> validated rows; every bad line becomes a reason, never a crash.

The contract is `schemas/platform.py`. Each line is checked field by field; a line that fails
is returned as a `Rejected` naming the file, the line number and the field, and the rest of the
file is still used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from schemas.names import is_owner_id
from schemas.platform import (
    CHAT_EVENT_FIELDS,
    CHAT_EVENT_TYPES,
    CONSENT_FIELDS,
    CONSENT_SCOPES,
    PLATFORM_CHAT_SCHEMA,
    ROOM_KINDS,
    VOICE_FIELDS,
)

_MAX_LINE = 256 * 1024


@dataclass(frozen=True)
class Rejected:
    """A landing line that was not used, and why."""

    source_file: str
    line_no: int
    reason: str
    raw: str


@dataclass(frozen=True)
class Consent:
    """An owner's permission to restore one platform user as a persona."""

    consent_id: str
    owner_id: str
    subject_id: str
    persona: str
    granted_at: datetime
    revoked_at: datetime | None
    scope: str
    #: The subject's words may also train the shared bases (text and voice), redacted.
    base_training: bool = False

    def allows_room(self, room_kind: str) -> bool:
        """Whether a room of this kind may feed the persona."""
        return self.scope == "all" or room_kind == "public"


class _FieldError(ValueError):
    pass


def parse_time(value: str, field: str) -> datetime:
    """An ISO 8601 time with an explicit offset, as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _FieldError(f"field {field}: not an ISO 8601 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise _FieldError(f"field {field}: time without a UTC offset: {value[:40]!r}")
    return parsed.astimezone(UTC)


def _records(
    data: bytes, source_file: str, fields: dict[str, tuple[type, bool]]
) -> tuple[list[tuple[int, dict[str, Any], str]], list[Rejected]]:
    good: list[tuple[int, dict[str, Any], str]] = []
    bad: list[Rejected] = []
    for line_no, raw_line in enumerate(data.split(b"\n"), start=1):
        if not raw_line.strip():
            continue
        raw = raw_line[:_MAX_LINE].decode("utf-8", "replace")
        try:
            if len(raw_line) > _MAX_LINE:
                raise _FieldError(f"line longer than {_MAX_LINE} bytes")
            try:
                record = json.loads(raw_line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise _FieldError(f"not a JSON object ({exc.__class__.__name__}: {exc})") from None
            if not isinstance(record, dict):
                raise _FieldError("not a JSON object")
            for name, (kind, required) in fields.items():
                value = record.get(name)
                if value is None:
                    if required:
                        raise _FieldError(f"field {name}: missing")
                    continue
                if kind is float and isinstance(value, int) and not isinstance(value, bool):
                    record[name] = value = float(value)
                if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                    raise _FieldError(f"field {name}: expected {kind.__name__}, got {type(value).__name__}")
                if isinstance(value, str) and required and not value.strip():
                    raise _FieldError(f"field {name}: empty")
            good.append((line_no, record, raw))
        except _FieldError as exc:
            bad.append(Rejected(source_file, line_no, str(exc), raw))
    return good, bad


def parse_chat_events(data: bytes, source_file: str) -> tuple[pa.Table, list[Rejected]]:
    """Chat events of one landing file as PLATFORM_CHAT_SCHEMA rows, plus the rejected lines."""
    records, rejected = _records(data, source_file, CHAT_EVENT_FIELDS)
    rows = []
    for line_no, record, raw in records:
        try:
            if record["room_kind"] not in ROOM_KINDS:
                raise _FieldError(f"field room_kind: {record['room_kind']!r} is not one of {ROOM_KINDS}")
            kind = CHAT_EVENT_TYPES.get(record["type"])
            if kind is None:
                raise _FieldError(f"field type: unknown event type {record['type']!r}")
            content = record.get("content") or ""
            if kind == "text" and not content.strip():
                raise _FieldError("field content: a text event needs content")
            rows.append(
                {
                    "event_id": record["event_id"],
                    "room_id": record["room_id"],
                    "room_kind": record["room_kind"],
                    "sender_id": record["sender_id"],
                    "sender_name": record["sender_name"],
                    "ts": parse_time(record["sent_at"], "sent_at"),
                    "kind": kind,
                    "text": content,
                    "source_file": source_file,
                    "line_no": line_no,
                }
            )
        except _FieldError as exc:
            rejected.append(Rejected(source_file, line_no, str(exc), raw))
    return pa.Table.from_pylist(rows, schema=PLATFORM_CHAT_SCHEMA), rejected


def parse_voice_manifest(data: bytes, source_file: str) -> tuple[list[dict[str, Any]], list[Rejected]]:
    """Voice recording records of one manifest (times as UTC), plus the rejected lines."""
    records, rejected = _records(data, source_file, VOICE_FIELDS)
    rows = []
    for line_no, record, raw in records:
        try:
            if not 0 < record["duration_s"] <= 4 * 3600:
                raise _FieldError(f"field duration_s: {record['duration_s']} is not in (0, 14400]")
            path = record["audio_path"]
            if path.startswith("/") or ".." in path.split("/"):
                raise _FieldError(f"field audio_path: unsafe path {path[:80]!r}")
            rows.append(
                {
                    **record,
                    "started_at": parse_time(record["started_at"], "started_at"),
                    "source_file": source_file,
                    "line_no": line_no,
                }
            )
        except _FieldError as exc:
            rejected.append(Rejected(source_file, line_no, str(exc), raw))
    return rows, rejected


def parse_consents(data: bytes, source_file: str) -> tuple[list[Consent], list[Rejected]]:
    """Consent records of one file, plus the rejected lines."""
    records, rejected = _records(data, source_file, CONSENT_FIELDS)
    consents = []
    for line_no, record, raw in records:
        try:
            if not is_owner_id(record["owner_id"]):
                raise _FieldError(f"field owner_id: {record['owner_id'][:40]!r} is not a valid owner id")
            scope = record.get("scope") or "all"
            if scope not in CONSENT_SCOPES:
                raise _FieldError(f"field scope: {scope!r} is not one of {CONSENT_SCOPES}")
            revoked = record.get("revoked_at")
            consents.append(
                Consent(
                    consent_id=record["consent_id"],
                    owner_id=record["owner_id"],
                    subject_id=record["subject_id"],
                    persona=record["persona"].strip(),
                    granted_at=parse_time(record["granted_at"], "granted_at"),
                    revoked_at=parse_time(revoked, "revoked_at") if revoked else None,
                    scope=scope,
                    base_training=bool(record.get("base_training") or False),
                )
            )
        except _FieldError as exc:
            rejected.append(Rejected(source_file, line_no, str(exc), raw))
    return consents, rejected
