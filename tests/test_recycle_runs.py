"""Recycling end to end through Prefect: incremental, idempotent, on Dask, and finished after a crash or SIGKILL."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.storage import open_storage
from parsers.platform import synth
from tasks.ingest.platform import write_landing
from tests.flow_support import indexed_count, lake_snapshot, recycle

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
START = date(2024, 3, 1)


def test_recycling_is_incremental_and_idempotent(es_url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REMEMBERME_ES_URL", es_url)
    lake = f"file://{tmp_path}/lake"
    storage = open_storage(lake)
    rooms = synth.world(5, seed=5, owners="incremental")  # owners no other test indexes
    write_landing(storage, synth.history(rooms, START, days=6, events_per_day=150))
    first = recycle(lake, START + timedelta(days=5))
    assert first["chat_files"] == 6 and first["rows_routed"] == 900
    assert first["indexed"] == 900 and first["personas_built"] >= 1
    owners = {r.owner_id for r in rooms}
    assert sum(indexed_count(es_url, o) for o in owners) == 900

    second = recycle(lake, START + timedelta(days=5))
    assert (second["chat_files"], second["rows_routed"], second["indexed"], second["personas_built"]) == (
        0,
        0,
        0,
        0,
    )

    write_landing(storage, synth.day_files(rooms, START + timedelta(days=6), events=40, seed=5))
    third = recycle(lake, START + timedelta(days=6))
    assert third["chat_files"] == 1 and third["rows_routed"] == 40 and third["indexed"] == 40
    assert sum(indexed_count(es_url, o) for o in owners) == 940
    snapshot = lake_snapshot(storage)
    for rows in snapshot["rows"].values():
        assert len({r[0] for r in rows}) == len(rows)


def test_a_recycling_run_that_dies_half_way_is_finished_by_the_next(tmp_path: Path, monkeypatch) -> None:
    import tasks.ingest.recycling

    rooms = synth.world(4, seed=8)
    files = synth.history(rooms, START, days=4, events_per_day=120)
    reference = open_storage(f"file://{tmp_path}/reference")
    write_landing(reference, files)
    recycle(reference.url, START + timedelta(days=3), index=False)

    crashed = open_storage(f"file://{tmp_path}/crashed")
    write_landing(crashed, files)
    real_commit = tasks.ingest.recycling.commit_pass

    def die(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("worker killed")  # after every write of the pass, before the watermark

    monkeypatch.setattr(tasks.ingest.recycling, "commit_pass", die)
    with pytest.raises(RuntimeError, match="worker killed"):
        recycle(crashed.url, START + timedelta(days=3), index=False)
    assert not crashed.exists("state/watermarks.json")
    monkeypatch.setattr(tasks.ingest.recycling, "commit_pass", real_commit)
    rerun = recycle(crashed.url, START + timedelta(days=3), index=False)
    assert rerun["chat_files"] == 4  # redone from the same position
    assert lake_snapshot(crashed) == lake_snapshot(reference)


def test_recycling_fans_out_on_a_dask_cluster(tmp_path: Path) -> None:
    from distributed import LocalCluster

    from flows.recycle import data_recycling
    from flows.runners import recycling_task_runner
    from infra.settings import Settings

    lake = f"file://{tmp_path}/lake"
    storage = open_storage(lake)
    rooms = synth.world(4, seed=21)
    write_landing(storage, synth.history(rooms, START, days=3, events_per_day=120, active_share=1.0))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:  # type: ignore[no-untyped-call]
        runner = recycling_task_runner(Settings(dask_address=cluster.scheduler_address))
        assert type(runner).__name__ == "DaskTaskRunner"
        on_dask = data_recycling.with_options(task_runner=runner)
        result = on_dask(as_of=START + timedelta(days=2), lake_url=lake, index=False, train=False)
        prefixes = set(cluster.scheduler.task_prefixes)
    assert result["chat_files"] == 3 and result["rows_routed"] == 360
    assert result["personas_built"] == 4
    assert {"stage_landing_file", "refresh_persona"} <= prefixes  # the mapped tasks ran on Dask


def test_a_recycling_process_killed_with_sigkill_is_finished_by_the_next_run(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    rooms = synth.world(20, seed=31)
    files = synth.history(rooms, START, days=20, events_per_day=200, voice=0)
    as_of = START + timedelta(days=19)
    reference = open_storage(f"file://{tmp_path}/reference")
    write_landing(reference, files)
    recycle(reference.url, as_of, index=False)

    killed = open_storage(f"file://{tmp_path}/killed")
    write_landing(killed, files)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMEMBERME_", "PREFECT_"))}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-child")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("rememberme")), "recycle", "--as-of", as_of.isoformat(),
         "--no-index", "--lake", killed.url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not killed.list("staging/") and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its temporary API server, mid-pass
    proc.wait(30)
    assert killed.list("staging/"), "the pass never started"
    assert not killed.exists("state/watermarks.json")  # killed before the watermark moved

    rerun = recycle(killed.url, as_of, index=False)
    assert rerun["chat_files"] == 20
    assert lake_snapshot(killed) == lake_snapshot(reference)
