"""The whole forget outside Prefect, and the receipt's scan of every store.

Steps: the source of truth (tasks/lifecycle/forget.py), then search and everything derived
(tasks/lifecycle/forget_derived.py), each journalled (tasks/lifecycle/journal.py) so a re-run after
a kill finishes the job; then `leftovers`, what any store still holds of the subject (all 0).
Prefect's history is the flow's last step (tasks/lifecycle/prefect_history.py, flows/forget.py).
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow.parquet as pq
from elasticsearch import Elasticsearch

from infra.registry import Registry
from infra.storage import Storage
from infra.text_features import Embedder
from schemas.search import MESSAGES_ALIAS, PAIRS_ALIAS
from tasks.lifecycle.forget import OWNER_PREFIXES, LakeForget, Subject
from tasks.lifecycle.forget_derived import TEXT_BASE, forget_derived, lineage_names
from tasks.lifecycle.journal import ForgetJournal
from tasks.training.train import ModelOptions
from tasks.voice.voice_model import VOICE_BASE


def forget(
    storage: Storage,
    client: Elasticsearch | None,
    owner_id: str,
    persona: str | None = None,
    aliases: tuple[str, ...] = (),
    options: ModelOptions | None = None,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """The whole forget outside Prefect: source of truth, search, derived data; a receipt dict.

    Prefect's history is the flow's last step (tasks/lifecycle/prefect_history.py); see flows/forget.py.
    """
    from tasks.lifecycle.forget import forget_source, subject_of

    subject = subject_of(owner_id, persona, aliases)
    journal = ForgetJournal(storage, subject.owner_id, subject.key)
    subject, done = forget_source(storage, owner_id, persona, aliases, journal)
    derived = forget_derived(storage, client, subject, done, options or ModelOptions(), embedder,
                             journal=journal)  # fmt: skip
    receipt = {
        "owner_id": subject.owner_id,
        "subject": subject.key,
        "resumed": journal.resumed,
        "source": done.to_dict(),
        "derived": derived.to_dict(),
        "left": leftovers(storage, client, subject, done, journal),
    }
    journal.finish()
    return receipt


def leftovers(
    storage: Storage,
    client: Elasticsearch | None,
    subject: Subject,
    done: LakeForget,
    journal: ForgetJournal | None = None,
) -> dict[str, int]:
    """The receipt's scan: what of the subject any store still holds (every count must be 0).

    Beside the lake, search and models: the raw uploads that held the subject's rows, staged and
    quarantined platform lines of theirs, the failed-piece ledger, and what the journal still owes
    (another persona not rebuilt, a base not retrained).
    """
    from infra.search import count_documents
    from tasks.lifecycle.forget import (
        count_quarantined_lines,
        ledger_pieces,
        subject_markers,
        subject_senders,
        uploads_holding,
    )

    owner = subject.owner_id
    journal = journal or ForgetJournal(storage, owner, subject.key)
    senders = subject_senders(storage, subject)
    left = {
        "lake_objects": 0,
        "lake_rows": 0,
        "raw_uploads": 0,
        "platform_lines": count_quarantined_lines(storage, subject_markers(subject, senders)),
        "ledger_pieces": len(ledger_pieces(storage, subject)),
        "owed_steps": sum(len(journal.pending(step)) for step in ("personas", "bases")),
        "search_documents": 0,
        "bases": 0,
        "models_on_retired_bases": 0,
    }
    # The journal's uploads, and any upload whose own ingest record names the subject.
    names = done.speakers if not subject.whole_owner else []
    uploads = {*journal.data.get("uploads", []), *(uploads_holding(storage, owner, names) if names else [])}
    for upload in sorted(uploads):
        where = f"raw/{owner}/{upload}/"
        quarantine = f"quarantine/{owner}/{upload}.parquet"
        held = storage.list(where) + storage.debris(where) + [quarantine] * storage.exists(quarantine)
        left["raw_uploads"] += int(bool(held))
    for key in storage.list("staging/platform/chat/"):
        if key.endswith(".parquet") and senders:
            column = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["sender_id"])["sender_id"]
            left["lake_rows"] += sum(1 for s in column.to_pylist() if s in senders)
    if subject.whole_owner:
        for prefix in OWNER_PREFIXES:
            where = prefix.format(owner=owner)
            left["lake_objects"] += len(storage.list(where)) + len(storage.debris(where))
        left["lake_objects"] += int(storage.exists(f"consent/base/{owner}.json"))
    else:
        for prefix in (f"datasets/{owner}/{subject.persona_id}/", f"models/{owner}/{subject.persona_id}/",
                       f"voice/owner={owner}/datasets/{subject.persona_id}/"):  # fmt: skip
            left["lake_objects"] += len(storage.list(prefix)) + len(storage.debris(prefix))
        for key in storage.list(f"messages/owner={owner}/") + storage.list(f"voice/owner={owner}/segments/"):
            if key.endswith(".parquet"):
                speakers = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["speaker"])["speaker"]
                left["lake_rows"] += sum(1 for s in speakers.to_pylist() if s in done.speakers)
    if client is not None:
        speakers = None if subject.whole_owner else done.speakers
        left["search_documents"] = count_documents(client, MESSAGES_ALIAS, owner, speakers)
        persona_id = None if subject.whole_owner else subject.persona_id
        left["search_documents"] += count_documents(client, PAIRS_ALIAS, owner, persona_id=persona_id)
    registry = Registry(storage)
    live_bases: dict[tuple[str, str], set[int]] = {}
    for base in (TEXT_BASE, VOICE_BASE):
        live_bases[base] = set(registry.versions(*base, "base"))
        for version in live_bases[base]:
            left["bases"] += int(lineage_names(registry.manifest(*base, "base", version), subject, done))
    for kind, base in (("text", TEXT_BASE), ("voice", VOICE_BASE)):
        for owner, persona_id in registry.personas(kind):
            for version in registry.versions(owner, persona_id, kind):
                used = registry.manifest(owner, persona_id, kind, version).get("base_version")
                left["models_on_retired_bases"] += int(used is not None and used not in live_bases[base])
    return left
