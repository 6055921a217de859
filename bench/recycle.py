"""Time of an incremental recycling pass with 1 % new data, as a fraction of the full pass.

    python bench/recycle.py [--rooms 200] [--days 100] [--events-per-day 1000] [--active-share 0.05]

Generates platform landing data (`parsers/platform/synth.py`), runs the data-recycling flow over
all of it (the full pass, from an empty lake), then lands one more day holding 1 % of the events
so far and runs the flow again (the incremental pass). Both passes run the same flow on the same
temporary Prefect API (started before the clock), without indexing (bench/index.py's job) and
without training (bench/train.py's; training cost is per changed persona, like the datasets).
Target: incremental <= 10 % of full. A day touches `active-share` of the rooms, as on a real
platform where most memorial rooms are quiet on a given night.
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
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="rm-bench-recycle-"))
    os.environ["PREFECT_HOME"] = str(tmp / "prefect")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    from prefect.testing.utilities import prefect_test_harness

    from flows.recycle import data_recycling
    from infra.storage import open_storage
    from parsers.platform import synth
    from tasks.platform import write_landing

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
        full = data_recycling(as_of=new_day - timedelta(days=1), lake_url=lake, index=False, train=False)
        full_s = time.perf_counter() - t0
        write_landing(
            storage,
            synth.day_files(rooms, new_day, total_events // 100, args.active_share, seed=11),
        )
        t0 = time.perf_counter()
        incremental = data_recycling(as_of=new_day, lake_url=lake, index=False, train=False)
        incr_s = time.perf_counter() - t0
    print(
        f"full pass: {full['chat_files']} files, {full['rows_routed']:,} rows, "
        f"{full['personas_built']} personas built: {full_s:.1f} s"
    )
    print(
        f"incremental pass (1 % new data): {incremental['chat_files']} file, "
        f"{incremental['rows_routed']:,} rows, {incremental['personas_built']} personas built: {incr_s:.1f} s"
    )
    print(f"ratio {incr_s / full_s:.1%} of the full pass (target <= 10 %)")


if __name__ == "__main__":
    main()
