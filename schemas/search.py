"""The Elasticsearch contract: index family, alias and the message mapping."""

from __future__ import annotations

from typing import Any, Final

#: Readers and writers use the alias; versions behind it change by an atomic alias swap.
MESSAGES_ALIAS: Final = "rememberme-messages"
MAPPING_VERSION: Final = 1

#: Korean without nori: character bigrams analysed on the server work on any cluster; `text`
#: keeps the standard analyzer for whole words and for other languages.
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
            "analyzer": {"rm_bigram": {"type": "custom", "tokenizer": "rm_bigram", "filter": ["lowercase"]}},
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
        },
    },
}
