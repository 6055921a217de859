"""How long a forget takes on an owner with 50,000 messages, against indexing the same messages.

    python bench/forget.py [--messages 50000] [--train-steps 20]

Builds one owner's KakaoTalk export (a family of three: the user, mom and dad, a month of days),
ingests it, indexes its messages into the project's local search server, builds mom's and dad's
datasets and trains dad's model (`--train-steps`). Then times `forget --persona 엄마` (her rows out
of every part, her upload, her datasets, her documents; dad's pairs held her words as context,
so his dataset is rebuilt, his model retrained and his pairs re-indexed) and then
`forget --owner` of the rest. Prefect's history step is not included (it scales with the runs
kept, not with the messages). Prints each time and its ratio to indexing the same messages.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--train-steps", type=int, default=20)
    args = parser.parse_args()

    from infra.search import connect
    from infra.services import LocalElasticsearch, free_port
    from infra.settings import Settings
    from infra.storage import open_storage
    from models.train import TrainConfig
    from parsers.kakao.render import Line, RenderOptions, render_export
    from tasks.datasets.build import build_dataset
    from tasks.indexing.indexer import index_persona_pairs, index_table
    from tasks.ingest.lake import load_message_table
    from tasks.ingest.uploads import ingest_export
    from tasks.lifecycle.forgetting import forget
    from tasks.training.train import ModelOptions, train_persona

    tmp = Path(tempfile.mkdtemp(prefix="rm-bench-forget-"))
    lines, ts = [], datetime(2023, 1, 1, 7, 0)
    speakers = ("나", "엄마", "나", "아빠")
    for i in range(args.messages):
        ts += timedelta(minutes=2 if i % 40 else 600)
        lines.append(Line(ts, speakers[i % 4], f"오늘 {i % 97}번째 이야기 밥은 먹었니 {i}"))
    export = tmp / "family.txt"
    export.write_text(render_export("android_ko", lines, RenderOptions(room="우리가족")), encoding="utf-8")

    search = LocalElasticsearch(tmp / "es", free_port())
    client = connect(search.up())
    try:
        storage = open_storage(f"file://{tmp}/lake")
        start = time.perf_counter()
        ingest_export(export, "bench", storage, Settings())
        ingest_s = time.perf_counter() - start
        start = time.perf_counter()
        index_table(storage, client, "bench", load_message_table(storage, "bench"))
        index_s = time.perf_counter() - start
        build_dataset(storage, "bench", "엄마")
        dad = build_dataset(storage, "bench", "아빠")
        options = ModelOptions(train=TrainConfig(max_steps=args.train_steps))
        train_persona(storage, "bench", dad.persona_id, dad.version, options)
        index_persona_pairs(storage, client, "bench", dad.persona_id, dad.version, None)

        start = time.perf_counter()
        persona = forget(storage, client, "bench", "엄마", options=options)
        persona_s = time.perf_counter() - start
        start = time.perf_counter()
        owner = forget(storage, client, "bench", options=options)
        owner_s = time.perf_counter() - start
    finally:
        search.down()
    p_src, p_der, o_src, o_der = persona["source"], persona["derived"], owner["source"], owner["derived"]
    print(f"{args.messages:,} messages; ingest {ingest_s:.1f} s, indexing {index_s:.1f} s (baselines)")
    print(
        f"forget --persona: {persona_s:.1f} s = {persona_s / index_s:.2f}x indexing "
        f"(rows {p_src['rows_removed']:,}, documents {p_der['documents_deleted']:,}, "
        f"rebuilt {p_der['rebuilt']}, left {sum(persona['left'].values())})"
    )
    print(
        f"forget --owner:   {owner_s:.1f} s = {owner_s / index_s:.2f}x indexing "
        f"(objects {o_src['objects_deleted']:,}, documents {o_der['documents_deleted']:,}, "
        f"left {sum(owner['left'].values())})"
    )


if __name__ == "__main__":
    main()
