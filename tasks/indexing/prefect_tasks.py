"""Prefect tasks of the indexing stage: thin wrappers over the plain functions beside them."""

from __future__ import annotations

from prefect import task

from infra import services
from infra.search import connect
from infra.settings import Settings
from infra.storage import open_storage
from infra.text_features import default_embedder
from tasks.indexing.indexer import IndexSummary, index_table
from tasks.ingest.lake import load_message_table, read_parts
from tasks.runs.policy import RETRY
from tasks.runs.run_logs import readable_failure_logs


@task(name="index-messages", persist_result=True, **RETRY)
def index_owner(
    lake_url: str, owner_id: str, parts: list[str] | None = None, vectors: bool = True
) -> IndexSummary:
    """Index an owner's messages (only `parts` when given); rejects go to quarantine."""
    readable_failure_logs()  # also in a Dask worker, another process
    settings = Settings()
    storage = open_storage(lake_url)
    client = connect(services.elasticsearch_url(settings))
    table = read_parts(storage, parts) if parts is not None else load_message_table(storage, owner_id)
    return index_table(storage, client, owner_id, table, default_embedder() if vectors else None)


@task(name="index-pairs", persist_result=True, **RETRY)
def index_pairs_task(
    lake_url: str, owner_id: str, persona_id: str, dataset_version: int, vectors: bool = True
) -> IndexSummary:
    """Index the persona's context->reply pairs (the memory `chat` retrieves real replies from)."""
    from tasks.indexing.indexer import index_persona_pairs

    client = connect(services.elasticsearch_url(Settings()))
    storage = open_storage(lake_url)
    embedder = default_embedder() if vectors else None
    return index_persona_pairs(storage, client, owner_id, persona_id, dataset_version, embedder)
