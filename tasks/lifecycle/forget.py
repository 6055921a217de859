"""Forget a data subject in its owner's source of truth: rows, uploads, voice, state, consent.

This module is the first step of a forget (flows/forget.py wires the rest: search, derived
models and bases, Prefect's history, the receipt). A tombstone is written first
(`state/tombstones/{owner}/{subject key | _all}.json`, holding no name): recycling and the base
corpus read the tombstones and never route a forgotten persona (or owner) again, even if a
forgetting run dies half-way; re-running `forget` finishes the job.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from infra.errors import TransientError
from infra.faults import fault_point
from infra.storage import Storage
from schemas.names import nfc, slug, validate_owner
from tasks.datasets.clean import persona_key, subject_key
from tasks.lifecycle.journal import ForgetJournal

if TYPE_CHECKING:
    from tasks.ingest.watermarks import RecyclingState

TOMBSTONES = "state/tombstones/"
ALL = "*"
_KEY = re.compile(r"^[0-9a-f]{16}$")
#: Everything an owner has in the lake (a whole-owner forget deletes them all).
OWNER_PREFIXES = (
    "raw/{owner}/",
    "messages/owner={owner}/",
    "quarantine/{owner}/",
    "datasets/{owner}/",
    "models/{owner}/",
    "voice/owner={owner}/",
)


@dataclass
class Subject:
    """Who is forgotten: one persona of an owner (its display names), or the whole owner."""

    owner_id: str
    #: Display names of the persona; empty for a whole owner.
    names: list[str] = field(default_factory=list)

    @property
    def whole_owner(self) -> bool:
        """Everything of the owner goes."""
        return not self.names

    @property
    def persona_id(self) -> str | None:
        """The persona's id (path component), None for a whole owner."""
        return slug(self.names[0]) if self.names else None

    @property
    def key(self) -> str:
        """The opaque key records use for this subject (`*` for a whole owner)."""
        return subject_key(self.owner_id, self.names[0]) if self.names else ALL


@dataclass
class LakeForget:
    """What the source-of-truth step removed, and what later steps need to know."""

    objects_deleted: int = 0
    rows_removed: int = 0
    uploads_removed: list[str] = field(default_factory=list)
    #: Every speaker name whose words went (a whole owner: all of its speakers).
    speakers: list[str] = field(default_factory=list)
    #: Subject keys of those speakers (base lineage names subjects by key).
    subject_keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts (no names)."""
        out = asdict(self)
        out.pop("speakers")
        out.pop("subject_keys")
        out["speakers"] = len(self.speakers)
        return out


def tombstone_key(owner_id: str, persona: str | None) -> str:
    """Where the tombstone of a persona (or of the whole owner) lives; the file names nobody."""
    return f"{TOMBSTONES}{owner_id}/{subject_key(owner_id, persona) if persona else '_all'}.json"


def load_tombstones(storage: Storage) -> set[tuple[str, str]]:
    """(owner, subject key) pairs that must never come back; `(owner, "*")` for a whole owner.

    Tombstones written before keys existed are named by persona id; they read as its key.
    """
    out = set()
    for key in storage.list(TOMBSTONES):
        owner, name = key[len(TOMBSTONES) :].split("/", 1)
        stem = name.removesuffix(".json")
        if stem == "_all":
            out.add((owner, ALL))
        else:
            out.add((owner, stem if _KEY.match(stem) else persona_key(owner, stem)))
            # A torn tombstone still forgets its subject by its file name.
            with contextlib.suppress(ValueError, FileNotFoundError):
                out.update((owner, k) for k in json.loads(storage.read_bytes(key)).get("keys", []))
    return out


def is_forgotten(tombstones: set[tuple[str, str]], owner_id: str, persona: str | None = None) -> bool:
    """Whether a tombstone covers this owner (or this persona of it)."""
    if (owner_id, ALL) in tombstones:
        return True
    return persona is not None and (owner_id, subject_key(owner_id, persona)) in tombstones


def subject_senders(storage: Storage, subject: Subject) -> list[str]:
    """Platform user ids of the subject (from the owner's consents): their staged words go too."""
    from tasks.ingest.platform import load_consents

    consents, _ = load_consents(storage)
    ids = {slug(n) for n in subject.names}
    return sorted(
        {c.subject_id for c in consents
         if c.owner_id == subject.owner_id and (subject.whole_owner or slug(c.persona) in ids)}
    )  # fmt: skip


def forgotten_senders(storage: Storage) -> set[str]:
    """Platform user ids every tombstone names: staging drops their events from now on."""
    out: set[str] = set()
    for key in storage.list(TOMBSTONES):
        out.update(json.loads(storage.read_bytes(key)).get("senders", []))
    return out


def write_tombstone(storage: Storage, subject: Subject) -> None:
    """Record the forget before anything is deleted (idempotent)."""
    record = {
        "owner_id": subject.owner_id,
        "subject": subject.key,
        # Every name's key: a speaker written under an alias is forgotten too (opaque, never a name).
        "keys": sorted({subject_key(subject.owner_id, n) for n in subject.names}),
        "senders": subject_senders(storage, subject),  # opaque platform ids, never names
        "at": datetime.now(UTC).isoformat(),
    }
    storage.create(tombstone_key(subject.owner_id, subject.names[0] if subject.names else None),
                   json.dumps(record).encode())  # fmt: skip


def owner_speakers(storage: Storage, owner_id: str) -> list[str]:
    """Every speaker name in an owner's messages (what a whole-owner forget must not leave)."""
    names: set[str] = set()
    for key in storage.list(f"messages/owner={owner_id}/"):
        if key.endswith(".parquet"):
            column = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["speaker"])["speaker"]
            names.update(s for s in pc.unique(column).to_pylist() if s)
    return sorted(names)


def subject_of(owner_id: str, persona: str | None = None, aliases: tuple[str, ...] = ()) -> Subject:
    """Who a forget request names (the persona's own name first: its id is the persona's path)."""
    owner_id = validate_owner(owner_id)
    subject = Subject(owner_id, sorted({nfc(persona), *(nfc(a) for a in aliases)}) if persona else [])
    if persona:
        subject.names.remove(nfc(persona))
        subject.names.insert(0, nfc(persona))
    return subject


def forget_source(storage: Storage, owner_id: str, persona: str | None = None,
                  aliases: tuple[str, ...] = (),
                  journal: ForgetJournal | None = None) -> tuple[Subject, LakeForget]:  # fmt: skip
    """Tombstone, then remove the subject from the owner's source of truth and own derived data.

    A whole owner: every prefix of the owner (raw, messages, quarantine, datasets, models, voice,
    consent). One persona: its rows in every message and voice part, every upload that held any
    of them (the file is the persona's words verbatim) with its quarantine, its datasets, models
    and voice data. Other personas of the owner are rebuilt by the next step
    (tasks/lifecycle/forget_derived.py), since their contexts held the persona's words.
    """
    subject = subject_of(owner_id, persona, aliases)
    owner_id = subject.owner_id
    write_tombstone(storage, subject)
    fault_point("forget.tombstone")
    journal = journal or ForgetJournal(storage, owner_id, subject.key)
    done = LakeForget()
    senders = subject_senders(storage, subject)
    for key in storage.list("staging/platform/chat/"):  # the subject's own words in staging
        done.rows_removed += drop_rows(storage, key, senders, column="sender_id")
    # Malformed landing lines of the subject, kept raw for the operator; and the failed-piece
    # ledger, which names a persona in clear beside its error.
    done.rows_removed += forget_quarantined_lines(storage, subject_markers(subject, senders))
    done.rows_removed += forget_ledger(storage, subject)
    if subject.whole_owner:
        done.speakers = owner_speakers(storage, owner_id)
        # Kept before the rows go: a re-run after a kill no longer finds whose they were.
        keys = [subject_key(owner_id, s) for s in done.speakers]
        done.subject_keys = journal.remember("subject_keys", keys)
        for prefix in OWNER_PREFIXES:
            done.objects_deleted += delete_prefix(storage, prefix.format(owner=owner_id))
        done.objects_deleted += int(storage.delete(f"consent/base/{owner_id}.json"))
        return subject, done
    names = subject.names
    done.speakers = list(names)
    done.subject_keys = sorted({subject_key(owner_id, n) for n in names})
    # A raw upload holds the persona's words verbatim: it goes, with its quarantine, when any of its
    # message parts held rows of the persona. Which ones is journalled before any row goes: a forget
    # killed after the rows went would otherwise find no part of theirs, and keep the uploads.
    uploads = journal.remember("uploads", uploads_holding(storage, owner_id, names))
    for key in storage.list(f"messages/owner={owner_id}/"):
        removed = drop_rows(storage, key, names)
        if removed:
            done.rows_removed += removed
            fault_point("forget.rows")
    for key in storage.list(f"voice/owner={owner_id}/segments/"):
        if key.endswith(".parquet"):  # the persona's utterance audio goes with its rows
            speakers = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["speaker"])["speaker"]
            if set(speakers.to_pylist()) & set(names):
                recording = key.rsplit("/", 1)[1].removesuffix(".parquet")
                done.objects_deleted += delete_prefix(storage, f"voice/owner={owner_id}/audio/{recording}/")
    for key in storage.list(f"voice/owner={owner_id}/"):
        done.rows_removed += drop_rows(storage, key, names)
    for upload in uploads:
        done.uploads_removed.append(upload)
        done.objects_deleted += delete_prefix(storage, f"raw/{owner_id}/{upload}/")
        done.objects_deleted += int(storage.delete(f"quarantine/{owner_id}/{upload}.parquet"))
    persona_id = slug(names[0])
    for prefix in (
        f"datasets/{owner_id}/{persona_id}/",
        f"models/{owner_id}/{persona_id}/",
        f"voice/owner={owner_id}/datasets/{persona_id}/",
    ):
        done.objects_deleted += delete_prefix(storage, prefix)
    fault_point("forget.source")
    return subject, done


def subject_markers(subject: Subject, senders: list[str]) -> list[str]:
    """What marks a raw landing line as the subject's: their platform ids (as JSON strings), their names."""
    return sorted({*(json.dumps(s) for s in senders), *subject.names})


def forget_quarantined_lines(storage: Storage, markers: list[str]) -> int:
    """Drop the platform quarantine's lines that mention any marker (a broken line has no parsed sender)."""
    removed = 0
    for key in quarantined_platform_parts(storage):
        table = pq.read_table(io.BytesIO(storage.read_bytes(key)))
        removed += _rewrite_without(storage, key, table, _mentions(table["raw"], markers))
    return removed


def quarantined_platform_parts(storage: Storage) -> list[str]:
    """Parts of the platform quarantine (malformed landing lines)."""
    return [k for k in storage.list("quarantine/platform/") if k.endswith(".parquet")]


def count_quarantined_lines(storage: Storage, markers: list[str]) -> int:
    """How many platform quarantine lines mention any marker (the receipt's scan)."""
    total = 0
    for key in quarantined_platform_parts(storage):
        raw = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["raw"])["raw"]
        total += int(pc.sum(_mentions(raw, markers)).as_py() or 0)
    return total


def _mentions(column: pa.ChunkedArray, markers: list[str]) -> pa.ChunkedArray:
    hit = pa.chunked_array([pa.array([False] * len(column), pa.bool_())])
    for marker in markers:
        hit = pc.or_(hit, pc.fill_null(pc.match_substring(column, marker), False))
    return hit


def ledger_pieces(storage: Storage, subject: Subject, state: RecyclingState | None = None) -> list[str]:
    """Keys of the recycling ledger's failed pieces that are the subject's."""
    from tasks.ingest.watermarks import load_state

    ids = {slug(n) for n in subject.names}
    return [
        key for key, item in (state or load_state(storage)).failed.items()
        if item.owner_id == subject.owner_id
        and (subject.whole_owner or (item.persona is not None and slug(item.persona) in ids))
    ]  # fmt: skip


def forget_ledger(storage: Storage, subject: Subject) -> int:
    """Drop the subject's failed pieces from the recycling ledger; how many went.

    A pass racing this one re-checks tombstones when it commits (tasks/ingest/recycling.py), so
    it does not write them back; this edit is a compare-and-swap, so it never undoes that commit.
    """
    from tasks.ingest.watermarks import STATE_KEY, RecyclingState

    for _ in range(50):
        data, token = storage.read_versioned(STATE_KEY)
        if data is None:
            return 0
        state = RecyclingState.from_json(data)
        theirs = ledger_pieces(storage, subject, state)
        if not theirs:
            return 0
        for key in theirs:
            state.failed.pop(key, None)
        if storage.replace_if(STATE_KEY, state.to_json(), token):
            return len(theirs)
    raise TransientError(f"{STATE_KEY} kept changing under this forget; it is retried")


def uploads_holding(storage: Storage, owner_id: str, speakers: list[str]) -> list[str]:
    """Upload ids (digests) under `raw/{owner}/` that hold words of any of `speakers`.

    Read from each upload's own ingest record (`by_speaker`, per chat file), so it holds after
    the rows are gone and wherever the lake is mounted (not by the URI of a message part, which
    changes when a lake is moved or restored elsewhere). An upload whose ingest never completed
    (no record) is counted too: nothing says it does not hold them.
    """
    wanted = {nfc(s) for s in speakers}
    holding = set()
    parts = _parts_holding(storage, owner_id, wanted)
    keys = storage.list(f"raw/{owner_id}/") + storage.debris(f"raw/{owner_id}/")
    for upload in {k.split("/")[2] for k in keys}:
        marker = f"raw/{owner_id}/{upload}/_ingest.json"
        records = json.loads(storage.read_bytes(marker)).get("files", []) if storage.exists(marker) else None
        if records is None or any(_names_any(r, wanted, parts) for r in records):
            holding.add(upload)
    return sorted(holding)


def _names_any(record: dict[str, Any], speakers: set[str], parts: set[str]) -> bool:
    """Whether one chat file's ingest record has words of `speakers` (older records: by its part)."""
    by_speaker = record.get("by_speaker")
    if by_speaker is None:
        return _part_key(record) in parts
    return bool(speakers & {nfc(s) for s, n in by_speaker.items() if n})


def _parts_holding(storage: Storage, owner_id: str, speakers: set[str]) -> set[str]:
    holding = set()
    for key in storage.list(f"messages/owner={owner_id}/"):
        if key.endswith(".parquet"):
            column = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["speaker"])["speaker"]
            if set(pc.unique(column).to_pylist()) & speakers:
                holding.add(key)
    return holding


def _part_key(record: dict[str, Any]) -> str | None:
    """The lake key of a chat file's message part, from its ingest record (key or URI)."""
    if record.get("messages_key"):
        return str(record["messages_key"])
    uri = str(record.get("messages_uri") or "")
    return uri[uri.index("messages/owner=") :] if "messages/owner=" in uri else None


def drop_rows(storage: Storage, key: str, speakers: list[str], column: str = "speaker") -> int:
    """Rewrite one Parquet part without the rows whose `column` is one of `speakers`; how many went."""
    if not key.endswith(".parquet") or not speakers:
        return 0
    table = pq.read_table(io.BytesIO(storage.read_bytes(key)))
    if column not in table.column_names:
        return 0
    theirs = pc.fill_null(pc.is_in(table[column], pa.array(speakers, pa.string())), False)
    return _rewrite_without(storage, key, table, theirs)


def _rewrite_without(storage: Storage, key: str, table: pa.Table, theirs: pa.ChunkedArray | pa.Array) -> int:
    """Rewrite the part `key` without the rows marked in `theirs` (deleted when none is left)."""
    removed = int(pc.sum(theirs).as_py() or 0)
    if not removed:
        return 0
    kept = table.filter(pc.invert(theirs))
    if kept.num_rows == 0:
        storage.delete(key)
    else:
        with storage.open_write(key) as handle:
            pq.write_table(kept, handle, compression="zstd")
    return removed


def delete_prefix(storage: Storage, prefix: str) -> int:
    """Delete every object under `prefix`, manifests first (no reader sees a manifest without files).

    The temp files of writes killed mid-way go too (`Storage.debris`): they hold the same bytes.
    """
    keys = storage.list(prefix) + storage.debris(prefix)
    ordered = sorted(keys, key=lambda k: not k.endswith(("manifest.json", "_ingest.json", "aliases.json")))
    return sum(storage.delete(key) for key in ordered)
