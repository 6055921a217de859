"""Context -> reply pairs in search: chat's memory (index, search with relevance signals, prune).

Owner-bound like every query here (infra/search.py); the ranker (tasks/replies/ranker.py)
turns the signals each hit carries into a choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from elasticsearch import Elasticsearch

from infra.search import IndexReport, bulk_index, fuse_rankings, hits_of, owner_filters, subject_filters
from infra.text_features import Embedder, morphemes


def delete_other_pair_versions(
    client: Elasticsearch, alias: str, owner_id: str, persona_id: str, dataset_version: int
) -> int:
    """Delete a persona's pair documents of any dataset version but `dataset_version`; returns how many.

    Re-indexing overwrites pairs that are still there (same id); this removes the ones a newer
    dataset no longer holds (a burst that shrank, a conversation a forget took out), so chat's
    memory is exactly the indexed version.
    """
    response = client.delete_by_query(
        index=alias,
        routing=owner_id,
        query={
            "bool": {
                "filter": subject_filters(owner_id, None, persona_id),
                "must_not": [{"term": {"dataset_version": dataset_version}}],
            }
        },
        refresh=True,
        conflicts="proceed",
    )
    return int(response.get("deleted", 0))


def index_pairs(
    client: Elasticsearch, alias: str, rows: list[dict[str, Any]], embedder: Embedder | None
) -> IndexReport:
    """Index context->reply pairs (`pair_id`, `owner_id`, `persona_id`, `prompt`, `context`, `reply`).

    Vectors (tasks/replies/ranker.py compares like with like): the answered message and the
    conversation before it are embedded as queries, the way a user's message will be; the
    reply as a passage, for how well it answers what a user says.
    """
    report = IndexReport()
    if not rows:
        return report
    # Chats repeat themselves ("응", "뭐해?"): analyse and embed each distinct text once.
    unique = sorted({r["prompt"] for r in rows})
    morphs = dict(zip(unique, morphemes(unique), strict=True))
    vectors: dict[str, dict[str, list[float]]] = {}
    if embedder is not None:
        contexts = sorted({r.get("context") or r["prompt"] for r in rows})
        replies = sorted({r["reply"] for r in rows})
        vectors = {
            "vector": dict(zip(unique, embedder.queries(unique).tolist(), strict=True)),
            "context_vector": dict(zip(contexts, embedder.queries(contexts).tolist(), strict=True)),
            "reply_vector": dict(zip(replies, embedder.passages(replies).tolist(), strict=True)),
        }
    actions = []
    for row in rows:
        source = {**row, "prompt_morph": morphs[row["prompt"]]}
        if vectors:
            source["vector"] = vectors["vector"][row["prompt"]]
            source["context_vector"] = vectors["context_vector"][row.get("context") or row["prompt"]]
            source["reply_vector"] = vectors["reply_vector"][row["reply"]]
        actions.append(
            {"_index": alias, "_id": row["pair_id"], "_routing": row["owner_id"], "_source": source}
        )
    return bulk_index(client, alias, actions, 1000)


def search_pairs(
    client: Elasticsearch,
    alias: str,
    owner_id: str,
    persona_id: str,
    query: str,
    message_vector: np.ndarray | None,
    conversation_vector: np.ndarray | None = None,
    size: int = 20,
    morphemes_too: bool = False,
) -> list[dict[str, Any]]:
    """A persona's pairs whose answered message is like `query`, with their relevance signals.

    Candidates: kNN on the answered message (and on the conversation before it, when one is
    given) plus words (character bigrams; kiwi morphemes with `morphemes_too`, which costs a
    model load in a one-shot process). Each hit carries the cosines the ranker needs, computed
    here from the stored vectors so that every candidate has them (None for a pair indexed
    without vectors).
    """
    filters = [*owner_filters(owner_id, None), {"term": {"persona_id": persona_id}}]
    should: list[dict[str, Any]] = [{"multi_match": {"query": query, "fields": ["prompt", "prompt.bigram"]}}]
    if morphemes_too:
        should.append({"match": {"prompt_morph": morphemes([query])[0] or query}})
    text_query = {"bool": {"filter": filters, "should": should, "minimum_should_match": 1}}
    exclude = ["prompt_morph"]
    found = [
        hits_of(
            client.search(
                index=alias, routing=owner_id, query=text_query, size=size // 2, source_excludes=exclude
            )
        )
    ]
    for field_name, vector in (("vector", message_vector), ("context_vector", conversation_vector)):
        if vector is None:
            continue
        knn = {
            "field": field_name,
            "query_vector": np.asarray(vector, dtype=np.float32).tolist(),
            "k": size,
            "num_candidates": max(50, size * 5),
            "filter": {"bool": {"filter": filters}},
        }
        found.append(
            hits_of(client.search(index=alias, routing=owner_id, knn=knn, size=size, source_excludes=exclude))
        )
    hits = fuse_rankings(found, "pair_id", 60)
    for hit in hits:
        hit["similarity"] = _cosine(hit.pop("vector", None), message_vector)
        hit["conversation_similarity"] = _cosine(hit.pop("context_vector", None), conversation_vector)
        hit["reply_relevance"] = _cosine(hit.pop("reply_vector", None), message_vector)
    return hits


def _cosine(stored: list[float] | None, vector: np.ndarray | None) -> float | None:
    if stored is None or vector is None:
        return None
    a, b = np.asarray(stored, dtype=np.float64), np.asarray(vector, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
