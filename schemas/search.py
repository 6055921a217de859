"""The Elasticsearch contract: index family, alias and the message mapping."""

from __future__ import annotations

import copy
from typing import Any, Final

#: Readers and writers use the alias; versions behind it change by an atomic alias swap.
MESSAGES_ALIAS: Final = "rememberme-messages"
MAPPING_VERSION: Final = 2
#: Dimensions of the sentence vectors (the default embedder is multilingual-e5-small).
VECTOR_DIMS: Final = 384

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


def message_index_body(nori: bool = False) -> dict[str, Any]:
    """The index body; with `nori` (a cluster with analysis-nori) `text.nori` is added too.

    Queries always name `text.nori`: on an index without it the field simply matches nothing,
    so one query works on both kinds of cluster.
    """
    body = copy.deepcopy(MESSAGE_INDEX_BODY)
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
