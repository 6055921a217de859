"""Docs/s of the project's indexer against a raw `_bulk` loop, on the same server, side by side.

    python bench/index.py [--messages 50000] [--es-url URL]

Without --es-url (or REMEMBERME_ES_URL) it starts the local Elasticsearch-API stand-in in a temp
folder. The stand-in is no Elasticsearch: use the ratio, not the absolute numbers (target: the
project's indexer >= 80 % of the raw loop, which does no retries and no per-item reporting, and
gets the same documents with their Korean morphemes computed beforehand, off its clock; the
project's indexer computes them on its clock). Sentence vectors are left out of both: embedding
speed is the model's, not the indexer's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from elasticsearch import Elasticsearch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.indices import ensure_alias
from infra.search import connect, index_messages
from infra.services import LocalElasticsearch, free_port
from infra.text_features import morphemes
from parsers.kakao.synth import conversation
from schemas.message import MESSAGE_SCHEMA
from schemas.search import MAPPING_VERSION


def messages(n: int) -> pa.Table:
    rows = []
    for i, line in enumerate(conversation(n, seed=3, start=datetime(2020, 1, 1))):
        rows.append(
            {
                "message_id": f"bench{i:015d}-{i:010d}",
                "owner_id": "bench",
                "conversation_id": "c",
                "source": "kakao_android_txt",
                "ts": (line.ts - timedelta(hours=9)).replace(tzinfo=UTC),
                "speaker": line.speaker,
                "text": line.text,
                "kind": "text",
                "line_no": i + 1,
                "attachment": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=MESSAGE_SCHEMA)


def raw_bulk(client: Elasticsearch, index: str, table: pa.Table, morphs: list[str], chunk: int = 2000) -> int:
    """The baseline: the same documents (morphemes computed beforehand, off the clock), plain _bulk."""
    done = 0
    rows = table.to_pylist()
    for row, morph in zip(rows, morphs, strict=True):
        row["text_morph"] = morph
    for start in range(0, len(rows), chunk):
        operations: list[dict[str, Any]] = []
        for row in rows[start : start + chunk]:
            operations.append(
                {"index": {"_index": index, "_id": row["message_id"], "routing": row["owner_id"]}}
            )
            operations.append(
                {
                    k: (v.isoformat() if k == "ts" else v)
                    for k, v in row.items()
                    if k not in ("line_no", "attachment")
                }
            )
        client.bulk(operations=operations)
        done += len(operations) // 2
    client.indices.refresh(index=index)
    return done


def arguments(doc: str) -> argparse.Namespace:
    """`--messages N --es-url URL`, shared by the search benchmarks."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--es-url", default=os.environ.get("REMEMBERME_ES_URL"))
    return parser.parse_args()


@contextlib.contextmanager
def search_server(url: str | None) -> Iterator[str]:
    """`url`, or the local stand-in started in a temp folder for the block."""
    if url:
        yield url
        return
    server = LocalElasticsearch(Path(tempfile.mkdtemp(prefix="rm-bench-es-")), free_port())
    try:
        yield server.up()
    finally:
        server.down()


def main() -> None:
    args = arguments(__doc__ or "")
    table = messages(args.messages)
    morphs = morphemes(table.column("text").to_pylist())
    with search_server(args.es_url) as url:
        client = connect(url, timeout_s=120)
        results: dict[str, list[float]] = {}
        for round_ in range(2):  # alternate so neither side always runs on a warmer server
            for name in ("raw", "ours") if round_ == 0 else ("ours", "raw"):
                alias = f"bench-{name}-{round_}-{int(time.time())}"
                ensure_alias(client, alias, MAPPING_VERSION)
                start = time.perf_counter()
                if name == "raw":
                    count = raw_bulk(client, f"{alias}-v{MAPPING_VERSION}", table, morphs)
                else:
                    count = index_messages(client, alias, table).indexed
                results.setdefault(name, []).append(count / (time.perf_counter() - start))
                client.indices.delete(index=f"{alias}-v{MAPPING_VERSION}")
        raw, ours = max(results["raw"]), max(results["ours"])
        print(f"{args.messages:,} messages: raw _bulk {raw:,.0f} docs/s, project indexer {ours:,.0f} docs/s")
        print(f"ratio {ours / raw:.0%} (target >= 80 %)")


if __name__ == "__main__":
    main()
