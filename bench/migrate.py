"""Docs/s of a mapping migration (copy into the new index, atomic swap) against a raw `_bulk` load.

    python bench/migrate.py [--messages 50000] [--es-url URL]

A migration re-analyses every document under the new mapping; the baseline loads the same
documents (morphemes computed beforehand, off its clock) into an empty index with plain `_bulk`,
on the same server in the same run. Without --es-url (or REMEMBERME_ES_URL) it starts the local
Elasticsearch-API stand-in in a temp folder: read the ratio, not the absolute numbers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.index import arguments, messages, raw_bulk, search_server
from infra.indices import ensure_alias, migrate
from infra.search import connect
from infra.text_features import morphemes


def main() -> None:
    args = arguments(__doc__ or "")
    table = messages(args.messages)
    morphs = morphemes(table.column("text").to_pylist())
    with search_server(args.es_url) as url:
        client = connect(url, timeout_s=600)
        alias = f"bench-migrate-{int(time.time())}"
        ensure_alias(client, alias, 1)
        start = time.perf_counter()
        loaded = raw_bulk(client, f"{alias}-v1", table, morphs)
        bulk_rate = loaded / (time.perf_counter() - start)
        report = migrate(client, alias, 2)
        moved_rate = report.documents / report.seconds
        left = [i for i in client.indices.get(index=f"{alias}-v*") if i != report.target]
        print(
            f"{args.messages:,} messages: raw _bulk load {bulk_rate:,.0f} docs/s, "
            f"migration v1 -> v2 {moved_rate:,.0f} docs/s ({report.documents:,} in {report.seconds:.1f} s)"
        )
        print(f"ratio {moved_rate / bulk_rate:.0%} of a fresh load; old indices left: {len(left)}")
        client.indices.delete(index=report.target)


if __name__ == "__main__":
    main()
