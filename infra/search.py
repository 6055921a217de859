"""Elasticsearch access: idempotent bulk indexing and owner-bound search (indices: infra/indices.py).

The one query helper always filters (and routes) by owner: there is no search path without it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from elasticsearch import ApiError, Elasticsearch, TransportError, helpers

from infra.errors import SearchError, SearchUnavailableError
from infra.faults import fault_point
from infra.indices import generations
from infra.leases import check_fences
from infra.text_features import Embedder, morphemes
from schemas.names import is_owner_id

_RETRYABLE = (429, 502, 503, 504)


@dataclass
class IndexReport:
    """What a bulk run did; failed items carry their id and the cluster's reason."""

    indexed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)


def connect(url: str, timeout_s: float = 30.0) -> Elasticsearch:
    """A client with retries on timeouts and transient status codes."""
    client = Elasticsearch(
        url, request_timeout=timeout_s, retry_on_timeout=True, max_retries=3, retry_on_status=_RETRYABLE
    )
    try:
        client.info()
    except (TransportError, ApiError) as exc:
        raise SearchUnavailableError(
            f"Elasticsearch at {url} is unreachable ({type(exc).__name__})"
        ) from None
    return client


def _batches(
    alias: str, table: pa.Table, batch_rows: int, embedder: Embedder | None
) -> Iterator[list[dict[str, Any]]]:
    for batch in table.to_batches(max_chunksize=batch_rows):
        rows = batch.to_pylist()
        texts = [row["text"] for row in rows]
        morphs = morphemes(texts)
        vectors = embedder.passages(texts).tolist() if embedder is not None and texts else None
        actions = []
        for i, row in enumerate(rows):
            source = {
                k: row[k]
                for k in ("message_id", "owner_id", "conversation_id", "source", "speaker", "kind", "text")
            }
            source["ts"] = row["ts"].isoformat()
            source["text_morph"] = morphs[i]
            if vectors is not None:
                source["vector"] = vectors[i]
            actions.append(
                {"_index": alias, "_id": row["message_id"], "_routing": row["owner_id"], "_source": source}
            )
        yield actions


_DONE = object()


def _prefetched(batches: Iterator[list[dict[str, Any]]], depth: int = 2) -> Iterator[dict[str, Any]]:
    """Yield the actions of `batches`, preparing the next batches on a thread meanwhile.

    Morpheme analysis and embedding (native code that releases the GIL) then overlap the HTTP
    round trips instead of adding to them; at most `depth` batches wait, so memory stays bounded.
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ready.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            ready.put(exc)

    worker = threading.Thread(target=produce, name="index-prefetch", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        worker.join(timeout=5)


def index_messages(
    client: Elasticsearch, alias: str, table: pa.Table, chunk: int = 2000, embedder: Embedder | None = None
) -> IndexReport:
    """Bulk-index Message rows with `_id = message_id` (re-indexing never duplicates).

    Memory stays bounded (streamed in chunks); transient failures are retried with back-off;
    documents the cluster rejects are reported one by one, never silently lost.
    """
    return bulk_index(client, alias, _prefetched(_batches(alias, table, chunk, embedder)), chunk)


def bulk_index(
    client: Elasticsearch, alias: str, actions: Iterable[dict[str, Any]], chunk: int
) -> IndexReport:
    """Streaming bulk with retries and back-off; every rejected document reported with its reason."""
    report = IndexReport()
    check_fences()  # a holder whose lock was taken over writes no documents
    results = helpers.streaming_bulk(
        client,
        actions,
        chunk_size=chunk,
        max_retries=5,
        initial_backoff=0.5,
        max_backoff=8,
        raise_on_error=False,
        raise_on_exception=False,
    )
    for n, (ok, item) in enumerate(results):
        if n == 0:
            fault_point("index.bulk_chunk")  # the first chunk is in the index
        if ok:
            report.indexed += 1
        else:
            detail = next(iter(item.values()))
            error = detail.get("error")
            reason = error.get("reason", str(error)) if isinstance(error, dict) else str(error)
            report.failed.append({"message_id": str(detail.get("_id")), "reason": reason})
    client.indices.refresh(index=alias)
    return report


def search_messages(
    client: Elasticsearch,
    alias: str,
    owner_id: str,
    query: str,
    speakers: Iterable[str] | None = None,
    size: int = 10,
) -> list[dict[str, Any]]:
    """Full-text search in one owner's messages, optionally only some speakers'.

    The owner filter and routing are added here, outside the user's text: the query string goes
    into a `multi_match` as plain text (never query_string syntax), so it cannot widen the filter.
    """
    filters = owner_filters(owner_id, speakers)
    fields = ["text", "text.bigram", "text.nori"]  # text.nori exists only on clusters with nori
    should: list[dict[str, Any]] = [{"multi_match": {"query": query, "fields": fields}}]
    morphs = morphemes([query])[0]
    if morphs:
        should.append({"match": {"text_morph": morphs}})
    body = {"bool": {"filter": filters, "should": should, "minimum_should_match": 1}}
    return hits_of(
        client.search(index=alias, routing=owner_id, query=body, size=size, source_excludes=["vector"])
    )


def hits_of(response: Any) -> list[dict[str, Any]]:
    """The documents of a search response, each with its score."""
    return [{"score": hit["_score"], **hit["_source"]} for hit in response["hits"]["hits"]]


def owner_filters(owner_id: str, speakers: Iterable[str] | None) -> list[dict[str, Any]]:
    """The filters every query carries: this owner only (a valid id), these speakers if given."""
    if not is_owner_id(owner_id):
        raise SearchError(f"invalid owner id {owner_id!r}")
    filters: list[dict[str, Any]] = [{"term": {"owner_id": owner_id}}]
    if speakers is not None:
        filters.append({"terms": {"speaker": list(speakers)}})
    return filters


def semantic_search(
    client: Elasticsearch,
    alias: str,
    owner_id: str,
    query: str,
    embedder: Embedder,
    speakers: Iterable[str] | None = None,
    size: int = 10,
) -> list[dict[str, Any]]:
    """KNN over sentence vectors, inside the same owner (and speaker) filter."""
    knn = {
        "field": "vector",
        "query_vector": embedder.query(query).tolist(),
        "k": size,
        "num_candidates": max(50, size * 5),
        "filter": {"bool": {"filter": owner_filters(owner_id, speakers)}},
    }
    return hits_of(
        client.search(index=alias, routing=owner_id, knn=knn, size=size, source_excludes=["vector"])
    )


def hybrid_search(
    client: Elasticsearch,
    alias: str,
    owner_id: str,
    query: str,
    embedder: Embedder,
    speakers: Iterable[str] | None = None,
    size: int = 10,
    rrf_k: int = 60,
) -> list[dict[str, Any]]:
    """BM25 and kNN hits fused by reciprocal rank (score = sum of 1 / (k + rank))."""
    lists = [
        search_messages(client, alias, owner_id, query, speakers, size * 3),
        semantic_search(client, alias, owner_id, query, embedder, speakers, size * 3),
    ]
    return fuse_rankings(lists, "message_id", rrf_k)[:size]


def fuse_rankings(lists: list[list[dict[str, Any]]], id_field: str, rrf_k: int) -> list[dict[str, Any]]:
    """Reciprocal-rank fusion: score = sum of 1 / (k + rank); a hit keeps its first list's fields."""
    fused: dict[str, dict[str, Any]] = {}
    for hits in lists:
        for rank, hit in enumerate(hits, start=1):
            entry = fused.setdefault(hit[id_field], {**hit, "score": 0.0})
            entry["score"] += 1.0 / (rrf_k + rank)
    return sorted(fused.values(), key=lambda h: (-h["score"], h[id_field]))


def subject_filters(
    owner_id: str, speakers: Iterable[str] | None, persona_id: str | None
) -> list[dict[str, Any]]:
    """The owner filters, narrowed to one persona when `persona_id` is given."""
    filters = owner_filters(owner_id, speakers)
    if persona_id is not None:
        filters.append({"term": {"persona_id": persona_id}})
    return filters


def delete_documents(
    client: Elasticsearch,
    alias: str,
    owner_id: str,
    speakers: Iterable[str] | None = None,
    persona_id: str | None = None,
) -> int:
    """Delete an owner's documents (only some speakers' or one persona's) from every generation.

    Old indices of a previous mapping version are searched too (they hold what was indexed
    before a migration); deleted documents are then expunged from the segments where the
    cluster supports it, so they do not linger on disk until a merge. Returns how many went.
    """
    filters = subject_filters(owner_id, speakers, persona_id)
    deleted = 0
    for index in generations(client, alias):
        response = client.delete_by_query(
            index=index,
            routing=owner_id,
            query={"bool": {"filter": filters}},
            refresh=True,
            conflicts="proceed",
        )
        deleted += int(response.get("deleted", 0))
        with contextlib.suppress(ApiError):  # a cluster without forcemerge merges on its own
            client.indices.forcemerge(index=index, only_expunge_deletes=True)
    return deleted


def count_documents(
    client: Elasticsearch,
    alias: str,
    owner_id: str,
    speakers: Iterable[str] | None = None,
    persona_id: str | None = None,
) -> int:
    """How many documents of an owner (some speakers', one persona's) any generation of `alias` holds."""
    filters = subject_filters(owner_id, speakers, persona_id)
    query = {"bool": {"filter": filters}}
    return sum(
        int(client.count(index=index, routing=owner_id, query=query)["count"])
        for index in generations(client, alias)
    )
