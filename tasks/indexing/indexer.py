"""Index an owner's messages from the lake into the retrieval memory; rejects go to quarantine.

Documents the cluster refuses (a mapping conflict, say) are written to
`quarantine/{owner}/index-{hash}.parquet` with the cluster's reason, and the rest stay indexed:
nothing is silently lost, and the quarantine file's name depends only on what was rejected, so a
re-run that meets the same rejects rewrites the same object.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from elasticsearch import Elasticsearch

from infra.indices import ensure_alias
from infra.search import delete_documents, index_messages
from infra.search_pairs import delete_other_pair_versions, index_pairs
from infra.storage import Storage
from infra.text_features import Embedder, default_embedder
from infra.versions import VersionError, read_verified
from models.data import Turn
from schemas.message import QUARANTINE_SCHEMA
from schemas.search import (
    MAPPING_VERSION,
    MESSAGES_ALIAS,
    PAIRS_ALIAS,
    PAIRS_MAPPING_VERSION,
    pair_index_body,
)
from tasks.replies.ranker import conversation_text, reply_variants
from tasks.trust.zones import redacted


@dataclass
class IndexSummary:
    """What indexing one owner's messages did."""

    owner_id: str
    alias: str
    indexed: int
    failed: list[dict[str, str]] = field(default_factory=list)
    quarantine_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def index_table(
    storage: Storage,
    client: Elasticsearch,
    owner_id: str,
    table: pa.Table,
    embedder: Embedder | None = None,
    alias: str = MESSAGES_ALIAS,
    switch: bool = False,
) -> IndexSummary:
    """Index `table` (one owner's Message rows, redacted here) and quarantine what the cluster rejects.

    The index is derived: its documents hold redacted text only (tasks/trust/zones.py). Rejects go to
    the owner's quarantine with their original text (a source-of-truth area).
    """
    # Indexing takes no persona lock (it serves every persona of the owner), so a forget may run
    # beside it: tombstones are checked before the write and again after it. A forget whose
    # tombstone came too late for the first check deletes documents before or after this write;
    # if after, ours are gone with the rest, and if before, the second check deletes them.
    speakers = [s for s in pc.unique(table["speaker"]).to_pylist() if s]
    gone = forgotten_speakers(storage, owner_id, speakers)
    if gone:
        table = table.filter(
            pc.invert(pc.fill_null(pc.is_in(table["speaker"], pa.array(gone, pa.string())), False))
        )
    # The index's vectors are the process's embedder's even when this call adds none.
    ensure_alias(client, alias, MAPPING_VERSION, space=embedder or default_embedder(), switch=switch)
    report = index_messages(client, alias, redacted(table), embedder=embedder)
    late = forgotten_speakers(storage, owner_id, speakers)
    if late:
        delete_documents(client, alias, owner_id, late)
    summary = IndexSummary(owner_id, alias, report.indexed, report.failed)
    if report.failed:
        summary.quarantine_uri = _quarantine(storage, owner_id, table, report.failed)
    return summary


def _quarantine(storage: Storage, owner_id: str, table: pa.Table, failed: list[dict[str, str]]) -> str:
    reasons = {f["message_id"]: f["reason"] for f in failed}
    rows = []
    for row in table.filter(pc.is_in(table["message_id"], pa.array(list(reasons)))).to_pylist():
        raw = {k: row[k] for k in ("message_id", "conversation_id", "speaker", "kind", "text")}
        rows.append(
            {
                "owner_id": owner_id,
                "upload_id": "index",
                "source_file": f"{row['source']}:{row['conversation_id']}",
                "line_no": row["line_no"],
                "reason": f"rejected by the search index: {reasons[row['message_id']]}",
                "raw": json.dumps(raw, ensure_ascii=False),
            }
        )
    digest = hashlib.sha256("\n".join(sorted(reasons)).encode()).hexdigest()[:16]
    key = f"quarantine/{owner_id}/index-{digest}.parquet"
    with storage.open_write(key) as handle:
        pq.write_table(pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA), handle, compression="zstd")
    return storage.uri(key)


def forgotten_speakers(storage: Storage, owner_id: str, speakers: list[str]) -> list[str]:
    """Those of `speakers` (names or persona ids) a forget's tombstone covers."""
    from tasks.lifecycle.forget import is_forgotten, load_tombstones

    tombstones = load_tombstones(storage)
    return [s for s in speakers if is_forgotten(tombstones, owner_id, s)]


def pair_rows(storage: Storage, owner_id: str, persona_id: str, dataset_version: int) -> list[dict[str, Any]]:
    """A dataset version's context->reply pairs as pair documents (both splits: chat's memory).

    A burst reply is one document, and each of its whole messages one more (`{pair_id}~{k}`).
    """
    prefix = f"datasets/{owner_id}/{persona_id}/v{dataset_version}"
    rows = []
    for split in ("train", "validation"):
        table = pq.read_table(io.BytesIO(read_verified(storage, f"{prefix}/{split}.parquet")))
        columns = ["pair_id", "context", "reply"]
        columns += ["reply_parts"] if "reply_parts" in table.column_names else []
        for row in table.select(columns).to_pylist():
            others = [t["text"] for t in row["context"] if not t["is_persona"]]
            if not others:
                continue
            turns = [Turn(t["text"], bool(t["is_persona"])) for t in row["context"]]
            for k, reply in enumerate(reply_variants(row["reply"], row.get("reply_parts"))):
                rows.append(
                    {
                        "pair_id": row["pair_id"] if k == 0 else f"{row['pair_id']}~{k}",
                        "owner_id": owner_id,
                        "persona_id": persona_id,
                        "dataset_version": dataset_version,
                        "prompt": others[-1],
                        "context": conversation_text(turns),
                        "reply": reply,
                    }
                )
    return rows


def index_persona_pairs(
    storage: Storage,
    client: Elasticsearch,
    owner_id: str,
    persona_id: str,
    dataset_version: int,
    embedder: Embedder | None,
) -> IndexSummary:
    """Index a dataset version's context->reply pairs: the persona's real answers for chat.

    The first indexing after a mapping change (or a change of embedder) rebuilds the new index from
    every published persona's production dataset before the alias moves (pairs are derived data: the datasets
    hold them; the old documents lack the new fields), so no persona loses its memory to a
    migration, not even for a moment.
    """
    rows = pair_rows(storage, owner_id, persona_id, dataset_version)
    ensure_pairs_alias(storage, client, embedder or default_embedder())
    report = index_pairs(client, PAIRS_ALIAS, rows, embedder)
    if not report.failed:  # a partial write keeps the older memory rather than lose it
        delete_other_pair_versions(client, PAIRS_ALIAS, owner_id, persona_id, dataset_version)
    if forgotten_speakers(storage, owner_id, [persona_id]):  # forgotten meanwhile: checked after writing
        delete_documents(client, PAIRS_ALIAS, owner_id, persona_id=persona_id)
    return IndexSummary(owner_id, PAIRS_ALIAS, report.indexed, report.failed)


def ensure_pairs_alias(storage: Storage, client: Elasticsearch, space: Embedder, switch: bool = False) -> str:
    """Make the pairs alias serve the current mapping with `space`'s vectors (see `ensure_alias`).

    A migration rebuilds every production persona's memory from the lake, embedded by `space`
    (whatever the caller indexes with: a memory without vectors would answer nothing).
    """
    return ensure_alias(
        client,
        PAIRS_ALIAS,
        PAIRS_MAPPING_VERSION,
        pair_index_body(space),
        rebuild=lambda target: migrate_pairs(storage, client, space, index=target),
        space=space,
        switch=switch,
    )


def switch_embedder(storage: Storage, client: Elasticsearch, embedder: Embedder) -> dict[str, str]:
    """Move both indices to `embedder`'s vectors (an operator's step after changing the setting).

    The chat memory is rebuilt from the lake (every production persona, embedded anew) before its
    alias moves; message documents keep their text and get vectors again when their owner's
    messages are indexed next. Returns alias -> the index it serves now.
    """
    return {
        MESSAGES_ALIAS: ensure_alias(client, MESSAGES_ALIAS, MAPPING_VERSION, space=embedder, switch=True),
        PAIRS_ALIAS: ensure_pairs_alias(storage, client, embedder, switch=True),
    }


def migrate_pairs(
    storage: Storage, client: Elasticsearch, embedder: Embedder | None, index: str = PAIRS_ALIAS
) -> int:
    """Index every persona with a production text model from that model's dataset into `index`.

    Returns the number of pair documents written.
    """
    from infra.registry import Registry

    total = 0
    for manifest in Registry(storage).productions("text"):
        dataset = int(manifest["dataset"]["version"])
        try:
            rows = pair_rows(storage, manifest["owner_id"], manifest["persona"], dataset)
        except VersionError:
            continue  # its dataset was forgotten (or is being): nothing of it may come back
        total += index_pairs(client, index, rows, embedder).indexed
    return total
