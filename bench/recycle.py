"""Time of an incremental recycling pass with 1 % new data, as a fraction of the full pass.

    python bench/recycle.py [--rooms 200] [--days 100] [--events-per-day 1000] [--active-share 0.05]
    python bench/recycle.py --rooms 20 --days 30 --train --train-steps 20   # with text + voice models

Generates platform landing data (`parsers/platform/synth.py`), runs the data-recycling flow over
all of it (the full pass, from an empty lake), then lands one more day holding 1 % of the events
so far and runs the flow again (the incremental pass). Both passes run the same flow on the same
temporary Prefect API (started before the clock), without indexing (bench/index.py's job) and
without training (bench/train.py's; training cost is per changed persona, like the datasets).
Target: incremental <= 10 % of full. A day touches `active-share` of the rooms, as on a real
platform where most memorial rooms are quiet on a given night. Voice recordings (2 a day) are
always preprocessed; `--train` also trains and publishes every changed persona's text and voice
model (`--train-steps` each), so the passes include the fanned-out training and ONNX exports.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--events-per-day", type=int, default=1000)
    parser.add_argument("--active-share", type=float, default=0.05)
    parser.add_argument("--train", action="store_true", help="train and publish text and voice models")
    parser.add_argument("--train-steps", type=int, default=20)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rm-bench-recycle-"))
    os.environ["PREFECT_HOME"] = str(tmp / "prefect")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    os.environ["REMEMBERME_TRAIN_MAX_STEPS"] = str(args.train_steps)
    from prefect.testing.utilities import prefect_test_harness

    from flows.recycle import data_recycling
    from infra.storage import open_storage
    from parsers.platform import synth
    from tasks.ingest.platform import write_landing

    lake = f"file://{tmp}/lake"
    storage = open_storage(lake)
    start = date(2024, 1, 1)
    rooms = synth.world(args.rooms, seed=11)
    write_landing(
        storage,
        synth.history(rooms, start, args.days, args.events_per_day, seed=11, active_share=args.active_share),
    )
    total_events = args.days * args.events_per_day
    new_day = start + timedelta(days=args.days)
    with prefect_test_harness(server_startup_timeout=120):
        t0 = time.perf_counter()
        full = data_recycling(as_of=new_day - timedelta(days=1), lake_url=lake, index=False, train=args.train)
        full_s = time.perf_counter() - t0
        write_landing(
            storage,
            synth.day_files(rooms, new_day, total_events // 100, args.active_share, seed=11),
        )
        t0 = time.perf_counter()
        incremental = data_recycling(as_of=new_day, lake_url=lake, index=False, train=args.train)
        incr_s = time.perf_counter() - t0
    for name, result, seconds in (
        ("full pass", full, full_s),
        ("incremental pass (1 % new)", incremental, incr_s),
    ):
        print(
            f"{name}: {result['chat_files']} chat files, {result['rows_routed']:,} rows, "
            f"{result['personas_built']} personas built, {result['models_published']} text models, "
            f"{result['voice_utterances']} utterances, {result['voice_models_published']} voice models, "
            f"{len(result['failed'])} failed: {seconds:.1f} s"
        )
    print(f"ratio {incr_s / full_s:.1%} of the full pass (target <= 10 %)")


if __name__ == "__main__":
    main()
