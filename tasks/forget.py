"""Forget a data subject: their rows, raw uploads, index documents, datasets and checkpoints.

A tombstone is written first (`state/tombstones/{owner}/{persona slug | _all}.json`): data
recycling reads the tombstones and never routes a forgotten persona (or owner) again, even if
a forgetting run dies half-way; re-running `forget` finishes the job.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from elasticsearch import Elasticsearch

from infra.search import delete_documents
from infra.storage import Storage
from schemas.search import MESSAGES_ALIAS, PAIRS_ALIAS
from tasks.clean import nfc, slug
from tasks.ingest import validate_owner

TOMBSTONES = "state/tombstones/"
ALL = "*"


@dataclass
class ForgetSummary:
    """What was removed."""

    owner_id: str
    persona: str | None
    objects_deleted: int = 0
    rows_removed: int = 0
    documents_deleted: int = 0
    uploads_removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def tombstone_key(owner_id: str, persona: str | None) -> str:
    """Where the tombstone of a persona (or of the whole owner) lives."""
    return f"{TOMBSTONES}{owner_id}/{slug(persona) if persona else '_all'}.json"


def load_tombstones(storage: Storage) -> set[tuple[str, str]]:
    """(owner, persona slug) pairs that must never come back; `(owner, "*")` for a whole owner."""
    out = set()
    for key in storage.list(TOMBSTONES):
        owner, name = key[len(TOMBSTONES) :].split("/", 1)
        stem = name.removesuffix(".json")
        out.add((owner, ALL if stem == "_all" else stem))
    return out


def forget(
    storage: Storage,
    client: Elasticsearch | None,
    owner_id: str,
    persona: str | None = None,
    aliases: tuple[str, ...] = (),
) -> ForgetSummary:
    """Remove a persona's data (or all of an owner's), after recording the tombstone."""
    owner_id = validate_owner(owner_id)
    record = {"owner_id": owner_id, "persona": persona, "at": datetime.now(UTC).isoformat()}
    storage.create(tombstone_key(owner_id, persona), json.dumps(record, ensure_ascii=False).encode())
    summary = ForgetSummary(owner_id, persona)
    if persona is None:
        for prefix in (
            f"raw/{owner_id}/",
            f"messages/owner={owner_id}/",
            f"quarantine/{owner_id}/",
            f"datasets/{owner_id}/",
            f"models/{owner_id}/",
            f"voice/owner={owner_id}/",
        ):
            summary.objects_deleted += _delete_prefix(storage, prefix)
        if client is not None:
            summary.documents_deleted = delete_documents(client, MESSAGES_ALIAS, owner_id)
            summary.documents_deleted += delete_documents(client, PAIRS_ALIAS, owner_id)
        return summary
    names = sorted({nfc(persona), *(nfc(a) for a in aliases)})
    touched_parts = set()
    for key in storage.list(f"messages/owner={owner_id}/"):
        removed = _drop_rows(storage, key, names)
        if removed:
            touched_parts.add(storage.uri(key))
            summary.rows_removed += removed
    for key in storage.list(f"voice/owner={owner_id}/segments/"):
        if key.endswith(".parquet"):  # the persona's utterance audio goes with its rows
            speakers = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["speaker"])["speaker"]
            if set(speakers.to_pylist()) & set(names):
                recording = key.rsplit("/", 1)[1].removesuffix(".parquet")
                summary.objects_deleted += _delete_prefix(
                    storage, f"voice/owner={owner_id}/audio/{recording}/"
                )
    for key in storage.list(f"voice/owner={owner_id}/"):
        summary.rows_removed += _drop_rows(storage, key, names)
    # A raw upload holds the persona's words verbatim: it goes, with its quarantine, when any of
    # its message parts held rows of the persona.
    for key in storage.list(f"raw/{owner_id}/"):
        if not key.endswith("/_ingest.json"):
            continue
        info = json.loads(storage.read_bytes(key))
        if any(f.get("messages_uri") in touched_parts for f in info.get("files", [])):
            upload = key.rsplit("/", 2)[1]
            summary.uploads_removed.append(upload)
            summary.objects_deleted += _delete_prefix(storage, f"raw/{owner_id}/{upload}/")
            summary.objects_deleted += int(storage.delete(f"quarantine/{owner_id}/{upload}.parquet"))
    for prefix in (
        f"datasets/{owner_id}/{slug(persona)}/",
        f"models/{owner_id}/{slug(persona)}/",
        f"voice/owner={owner_id}/datasets/{slug(persona)}/",
    ):
        summary.objects_deleted += _delete_prefix(storage, prefix)
    if client is not None:
        summary.documents_deleted = delete_documents(client, MESSAGES_ALIAS, owner_id, names)
        summary.documents_deleted += delete_documents(client, PAIRS_ALIAS, owner_id, persona_id=slug(persona))
    return summary


def _drop_rows(storage: Storage, key: str, speakers: list[str]) -> int:
    """Rewrite one Parquet part without the rows of `speakers`; returns how many went."""
    if not key.endswith(".parquet"):
        return 0
    table = pq.read_table(io.BytesIO(storage.read_bytes(key)))
    theirs = pc.fill_null(pc.is_in(table["speaker"], pa.array(speakers)), False)
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


def _delete_prefix(storage: Storage, prefix: str) -> int:
    """Delete every object under `prefix`, manifests first (no reader sees a manifest without files)."""
    keys = storage.list(prefix)
    ordered = sorted(keys, key=lambda k: not k.endswith(("manifest.json", "_ingest.json", "aliases.json")))
    return sum(storage.delete(key) for key in ordered)
