"""Platform landing data -> staged events -> each consenting owner's lake.

1. `stage_chat_file`: one landing file is parsed and its valid events written per room under
   `staging/platform/chat/room={room}/{file digest}.parquet` (platform-owned, not per owner);
   bad lines go to `quarantine/platform/{file digest}.parquet`. Names come from the landing key,
   so staging a file twice writes the same objects.
2. `route_to_owners`: for every active consent, the rooms its subject talks in (and the consent's
   scope allows) are copied into the owner's lake as Message rows: new parts of rooms already
   routed, the whole staged history of rooms routed for the first time (a new consent, or the
   subject's first words in a room). The subject speaks as the persona; everyone else keeps their
   display name tagged with their user id, so no one without consent can ever match a persona.
3. `route_voice`: voice manifests of consenting subjects become VoiceRecording rows of the owner.
"""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from infra.faults import fault_point
from infra.storage import Storage
from parsers.platform.events import (
    Consent,
    Rejected,
    parse_chat_events,
    parse_consents,
    parse_voice_manifest,
)
from schemas.message import MESSAGE_SCHEMA, QUARANTINE_SCHEMA
from schemas.names import is_owner_id
from schemas.platform import PLATFORM_CHAT_SCHEMA, VOICE_RECORDING_SCHEMA
from tasks.datasets.clean import subject_key
from tasks.lifecycle.forget import is_forgotten, load_tombstones

LANDING = "landing/platform/"
CHAT_PREFIX = f"{LANDING}chat/"
VOICE_PREFIX = f"{LANDING}voice/"
AUDIO_PREFIX = f"{LANDING}voice/audio/"
CONSENT_PREFIX = f"{LANDING}consent/"
STAGING = "staging/platform/chat/"
MEMBERS_KEY = "state/platform/members.parquet"
_MEMBERS_SCHEMA = pa.schema(
    [("room_id", pa.string()), ("room_kind", pa.string()), ("sender_id", pa.string())]
)


def digest(text: str) -> str:
    """A short stable name for a key or a set of keys."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class StagedFile:
    """What staging one landing chat file produced."""

    key: str
    events: int
    quarantined: int
    parts: dict[str, str] = field(default_factory=dict)  # room -> staged part key
    members: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class RoutedPart:
    """Message rows copied into one owner's lake for one consent."""

    owner_id: str
    persona: str
    consent_id: str
    key: str
    rows: int
    rooms: list[str]


def quarantine_rejects(storage: Storage, landing_key: str, rejected: list[Rejected]) -> str | None:
    """Write a landing file's bad lines to the platform quarantine; returns the key (None if none)."""
    if not rejected:
        return None
    rows = [
        {
            "owner_id": "platform",
            "upload_id": digest(landing_key),
            "source_file": r.source_file,
            "line_no": r.line_no,
            "reason": r.reason,
            "raw": r.raw,
        }
        for r in rejected
    ]
    key = f"quarantine/platform/{digest(landing_key)}.parquet"
    with storage.open_write(key) as handle:
        pq.write_table(pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA), handle, compression="zstd")
    return key


def stage_chat_file(storage: Storage, key: str, forgotten: set[str] | None = None) -> StagedFile:
    """Parse one landing chat file and stage its events per room.

    Events sent by `forgotten` platform users (subjects a forget removed) are not staged: what
    the platform still delivers of them after a forget never enters our zones again.
    """
    table, rejected = parse_chat_events(storage.read_bytes(key), key)
    if forgotten:
        gone = pc.is_in(table["sender_id"], pa.array(sorted(forgotten), pa.string()))
        table = table.filter(pc.invert(gone))
    bad_rooms = [r for r in pc.unique(table["room_id"]).to_pylist() if not is_owner_id(r)]
    if bad_rooms:
        keep = pc.invert(pc.is_in(table["room_id"], pa.array(bad_rooms)))
        for row in table.filter(pc.invert(keep)).to_pylist():
            rejected.append(
                Rejected(
                    key, row["line_no"], f"field room_id: {row['room_id'][:40]!r} is not a plain token", ""
                )
            )
        table = table.filter(keep)
    quarantine_rejects(storage, key, rejected)
    staged = StagedFile(key, table.num_rows, len(rejected))
    name = digest(key)
    for room in sorted(set(table["room_id"].to_pylist())):
        part = table.filter(pc.equal(table["room_id"], room))
        part_key = f"{STAGING}room={room}/{name}.parquet"
        with storage.open_write(part_key) as handle:
            pq.write_table(part, handle, compression="zstd")
        staged.parts[room] = part_key
        fault_point("recycle.staged")
    pairs = (
        table.select(["room_id", "room_kind", "sender_id"])
        .group_by(["room_id", "room_kind", "sender_id"])
        .aggregate([])
    )
    staged.members = list(zip(*(pairs[c].to_pylist() for c in pairs.column_names), strict=True))
    return staged


def load_members(storage: Storage) -> pa.Table:
    """Who has spoken in which room (room_id, room_kind, sender_id), over all staged history."""
    if not storage.exists(MEMBERS_KEY):
        return _MEMBERS_SCHEMA.empty_table()
    return pq.read_table(io.BytesIO(storage.read_bytes(MEMBERS_KEY)))


def save_members(storage: Storage, members: pa.Table, new: list[tuple[str, str, str]]) -> pa.Table:
    """Add `new` memberships (idempotent union) and store the table."""
    if not new:
        return members
    added = pa.Table.from_pylist(
        [{"room_id": r, "room_kind": k, "sender_id": s} for r, k, s in new], schema=_MEMBERS_SCHEMA
    )
    merged = pa.concat_tables([members, added]).group_by(["room_id", "room_kind", "sender_id"]).aggregate([])
    merged = merged.sort_by([("room_id", "ascending"), ("sender_id", "ascending")])
    with storage.open_write(MEMBERS_KEY) as handle:
        pq.write_table(merged, handle, compression="zstd")
    return merged


def load_consents(storage: Storage) -> tuple[list[Consent], list[Rejected]]:
    """Every consent record (all files; a small registry, read whole every run)."""
    consents: list[Consent] = []
    rejected: list[Rejected] = []
    for key in storage.list(CONSENT_PREFIX):
        if key.endswith(".jsonl"):
            good, bad = parse_consents(storage.read_bytes(key), key)
            consents.extend(good)
            rejected.extend(bad)
    return consents, rejected


def active_consents(consents: list[Consent], tombstones: set[tuple[str, str]]) -> list[Consent]:
    """Unrevoked consents not covered by a tombstone (`(owner, "*")` covers a whole owner)."""
    out = []
    for c in sorted(consents, key=lambda c: c.consent_id):
        if c.revoked_at is not None:
            continue
        if (c.owner_id, "*") in tombstones or (c.owner_id, subject_key(c.owner_id, c.persona)) in tombstones:
            continue
        out.append(c)
    return out


def route_to_owners(
    storage: Storage,
    consents: list[Consent],
    members: pa.Table,
    new_parts: dict[str, list[str]],
    routed: dict[str, list[str]],
) -> tuple[list[RoutedPart], dict[str, list[str]]]:
    """Copy staged events into each consenting owner's lake; returns the parts and the new routed map."""
    personas_by_owner: dict[str, dict[str, str]] = defaultdict(dict)
    for c in consents:
        personas_by_owner[c.owner_id][c.subject_id] = c.persona
    rooms_of: dict[str, dict[str, str]] = defaultdict(dict)  # sender -> room -> kind
    for room, kind, sender in zip(
        members["room_id"].to_pylist(),
        members["room_kind"].to_pylist(),
        members["sender_id"].to_pylist(),
        strict=True,
    ):
        rooms_of[sender][room] = kind
    out: list[RoutedPart] = []
    next_routed = {cid: list(rooms) for cid, rooms in routed.items()}
    for c in consents:
        done = set(routed.get(c.consent_id, []))
        rooms = sorted(r for r, kind in rooms_of.get(c.subject_id, {}).items() if c.allows_room(kind))
        keys: list[str] = []
        for room in rooms:
            if room in done:
                keys.extend(new_parts.get(room, []))
            else:
                keys.extend(storage.list(f"{STAGING}room={room}/"))
        next_routed[c.consent_id] = sorted(done | set(rooms))
        if not keys:
            continue
        keys = sorted(set(keys))
        table = _as_messages(storage, keys, c.owner_id, personas_by_owner[c.owner_id])
        name = digest(c.consent_id + "|" + "|".join(keys))
        key = f"messages/owner={c.owner_id}/source=platform_chat/{name}.parquet"
        if not _write_unless_forgotten(storage, key, table, c.owner_id, c.persona):
            continue  # forgotten since the pass was planned: never routed again
        touched = sorted({k.split("room=")[1].split("/")[0] for k in keys})
        out.append(RoutedPart(c.owner_id, c.persona, c.consent_id, key, table.num_rows, touched))
    return out, next_routed


def _write_unless_forgotten(storage: Storage, key: str, table: pa.Table, owner_id: str, persona: str) -> bool:
    """Write a routed part unless its persona is forgotten; False if it was (nothing left behind).

    Tombstones are read again at this commit point, not only when the pass was planned, and once
    more after the write: a forget records its tombstone before it deletes anything, so either this
    second look sees it (and the part goes again) or the forget came later and its deletion sees
    the part. A pass planned before a forget never brings the person back.
    """
    if is_forgotten(load_tombstones(storage), owner_id, persona):
        return False
    with storage.open_write(key) as handle:
        pq.write_table(table, handle, compression="zstd")
    if is_forgotten(load_tombstones(storage), owner_id, persona):
        storage.delete(key)
        return False
    return True


def _as_messages(storage: Storage, keys: list[str], owner_id: str, personas: dict[str, str]) -> pa.Table:
    events = pa.concat_tables(
        [pq.read_table(io.BytesIO(storage.read_bytes(k)), schema=PLATFORM_CHAT_SCHEMA) for k in keys]
    )
    rows = []
    for e in events.to_pylist():
        persona = personas.get(e["sender_id"])
        speaker: str | None = persona or f"{e['sender_name']} [{e['sender_id']}]"
        if e["kind"] == "system":
            speaker = None
        rows.append(
            {
                # Owner in the id: the same event copied to two owners stays two documents.
                "message_id": _event_message_id(owner_id, e["event_id"]),
                "owner_id": owner_id,
                "conversation_id": e["room_id"],
                "source": "platform_chat",
                "ts": e["ts"],
                "speaker": speaker,
                "text": e["text"],
                "kind": e["kind"],
                "line_no": e["line_no"],
                "attachment": None,
            }
        )
    table = pa.Table.from_pylist(rows, schema=MESSAGE_SCHEMA)
    return table.sort_by([("ts", "ascending"), ("message_id", "ascending")])


def _event_message_id(owner_id: str, event_id: str) -> str:
    # The event id, not the landing position: a backend retry that lands an event twice (in two
    # files) still gives one row id; the owner is part of it so owners never share a document.
    h = hashlib.sha256(f"{owner_id}|{event_id}".encode()).hexdigest()
    return f"{h[:20]}-{int(h[20:32], 16) % 10**10:010d}"


def route_voice(
    storage: Storage, key: str, consents: list[Consent], members: pa.Table
) -> tuple[list[tuple[str, str, int]], int]:
    """VoiceRecording rows of consenting subjects from one manifest; returns (owner, key, rows), rejects."""
    records, rejected = parse_voice_manifest(storage.read_bytes(key), key)
    kinds = dict(zip(members["room_id"].to_pylist(), members["room_kind"].to_pylist(), strict=True))
    by_owner: dict[str, list[dict[str, object]]] = defaultdict(list)
    for record in records:
        audio_key = AUDIO_PREFIX + record["audio_path"]
        if not storage.exists(audio_key):
            rejected.append(Rejected(key, record["line_no"], f"field audio_path: no object {audio_key}", ""))
            continue
        for c in consents:
            # A room never seen in chat counts as private.
            if c.subject_id == record["speaker_id"] and c.allows_room(
                kinds.get(record["room_id"], "private")
            ):
                by_owner[c.owner_id].append(
                    {
                        "recording_id": record["recording_id"],
                        "owner_id": c.owner_id,
                        "room_id": record["room_id"],
                        "speaker_id": record["speaker_id"],
                        "speaker": c.persona,
                        "started_at": record["started_at"],
                        "duration_s": record["duration_s"],
                        "audio_uri": storage.uri(audio_key),
                        "audio_key": audio_key,
                        "transcript": record.get("transcript"),
                        "source_file": key,
                        "line_no": record["line_no"],
                    }
                )
    quarantine_rejects(storage, key, rejected)
    written = []
    for owner, rows in sorted(by_owner.items()):
        out_key = f"voice/owner={owner}/recordings/{digest(key)}.parquet"
        with storage.open_write(out_key) as handle:
            pq.write_table(pa.Table.from_pylist(rows, schema=VOICE_RECORDING_SCHEMA), handle)
        written.append((owner, out_key, len(rows)))
    return written, len(rejected)


def write_landing(storage: Storage, files: dict[str, bytes]) -> int:
    """Store generated landing files the way the backend does (skips names already there)."""
    written = 0
    for key, data in sorted(files.items()):
        written += storage.create(key, data)
    return written
