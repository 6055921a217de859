"""Recycling fans out over several personas with text and voice, and one failure is nobody else's.

The README's example runs as a user runs it (the CLI, in its own process, with its own temporary
Prefect API), on the default thread runner and on a real Dask `LocalCluster`. The failure test
runs the flow in-process so that one persona's training can be made to raise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from infra.storage import open_storage
from parsers.platform import synth
from tasks.ingest.platform import write_landing

pytestmark = pytest.mark.integration
START = date(2024, 3, 1)


def _cli(*args: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("rememberme")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=env, check=False, timeout=timeout
    )


# The README's example on threads; on Dask, three families are enough to meet in one worker.
@pytest.mark.parametrize(("runner", "rooms"), [("threads", 5), ("dask", 3)])
def test_the_readme_example_recycles_families_with_voice_and_text(
    runner: str,
    rooms: int,
    es_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("REMEMBERME_ES_URL", es_url)
    monkeypatch.setenv("REMEMBERME_TRAIN_MAX_STEPS", "10")  # every persona still trains and exports
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # the CLI's own temporary API, as for a user
    lake = f"file://{tmp_path}/lake"
    landing = _cli("landing", "--rooms", str(rooms), "--days", "6", "--lake", lake, env=env)
    assert landing.returncode == 0, landing.stderr[-2000:]

    def recycle() -> dict[str, Any]:
        proc = _cli("recycle", "--as-of", "2024-03-06", "--no-vectors", "--json", "--lake", lake, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    if runner == "dask":
        from distributed import LocalCluster
        from prefect.settings import PREFECT_API_URL

        # As in production, the flow's process and the workers report to one API (the session's),
        # instead of each worker starting a temporary one of its own.
        request.getfixturevalue("prefect_api")
        api = str(PREFECT_API_URL.value())
        env["PREFECT_API_URL"] = api
        monkeypatch.setenv("PREFECT_API_URL", api)  # the workers inherit it
        # Two processes with two threads each: exports can meet inside one worker process.
        with LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster:  # type: ignore[no-untyped-call]
            env["REMEMBERME_DASK_ADDRESS"] = cluster.scheduler_address
            first, second = recycle(), recycle()
            prefixes = set(cluster.scheduler.task_prefixes)
        assert {"refresh_persona", "refresh_voice", "preprocess_voice"} <= prefixes  # ran on Dask
    else:
        first, second = recycle(), recycle()

    assert first["failed"] == [] and first["personas_changed"] == rooms
    assert first["models_published"] == rooms  # every family's text model
    assert first["voice_models_published"] >= 2  # every persona that spoke with words
    assert first["voice_models_published"] == _voices_with_words(tmp_path / "lake")
    assert first["indexed"] == first["rows_routed"] == 1200  # 200 chat events a day over 6 days
    for key in ("chat_files", "voice_files", "rows_routed", "indexed", "personas_built", "models_published",
                "voice_models_published", "retried"):  # fmt: skip
        assert second[key] == 0, key  # the second pass does no work
    assert second["failed"] == [] and second["watermark"] == first["watermark"]


def _voices_with_words(lake: Path) -> int:
    """Voice datasets with at least two transcribed utterances (what a voice model needs)."""
    from tasks.voice.voice_model import MIN_TRANSCRIBED

    storage = open_storage(f"file://{lake}")
    keys = [k for k in storage.list("voice/") if "/datasets/" in k and k.endswith("manifest.json")]
    manifests = [json.loads(storage.read_bytes(k)) for k in keys]
    return sum(1 for m in manifests if m["with_transcript"] >= MIN_TRANSCRIBED)


def _flow_logs(flow_run_id: UUID | None) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # logs travel to the API in batches
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id] if flow_run_id else []))
    messages: list[str] = []
    with get_client(sync_client=True) as client:
        while page := client.read_logs(log_filter=log_filter, limit=200, offset=len(messages)):
            messages += [log.message for log in page]
    return messages


@pytest.mark.usefixtures("prefect_api")
def test_one_persona_failing_is_reported_retried_alone_then_parked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.training.train
    from flows.recycle import data_recycling
    from tasks.ingest.watermarks import load_state

    monkeypatch.setenv("REMEMBERME_TRAIN_MAX_STEPS", "5")
    lake = f"file://{tmp_path}/lake"
    storage = open_storage(lake)
    rooms = synth.world(3, seed=12)
    write_landing(storage, synth.history(rooms, START, days=3, events_per_day=90, active_share=1.0, voice=0))
    broken = rooms[1]
    real_train = tasks.training.train.train_persona
    calls: list[str] = []

    def train(storage: Any, owner_id: str, persona_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(owner_id)
        if owner_id == broken.owner_id:
            raise RuntimeError("CUDA error: an illegal memory access was encountered\n  (long detail)")
        return real_train(storage, owner_id, persona_id, *args, **kwargs)

    monkeypatch.setattr(tasks.training.train, "train_persona", train)
    as_of = START + timedelta(days=2)

    def recycle(**kwargs: Any) -> tuple[dict[str, Any], Any]:
        state = data_recycling(as_of=as_of, lake_url=lake, index=False, return_state=True, **kwargs)
        assert state.is_completed()  # the pass succeeds whatever one persona does
        return state.result(), state

    first, state = recycle()
    assert first["personas_changed"] == 3 and first["models_published"] == 2  # the others publish
    assert first["failed"] == [
        f"text refresh of {broken.owner_id}/{broken.persona}: "
        "RuntimeError: CUDA error: an illegal memory access was encountered"
    ]
    assert storage.list(f"models/{rooms[0].owner_id}/") and not storage.list(f"models/{broken.owner_id}/")
    recorded = load_state(storage).failed
    assert [(i.work, i.owner_id, i.attempts) for i in recorded.values()] == [("text", broken.owner_id, 1)]
    assert load_state(storage).streams["chat"].through_dt is not None  # the watermark moved

    logs = _flow_logs(state.state_details.flow_run_id)
    assert not any("Traceback" in line or "\n" in line.strip() for line in logs)  # one line each
    assert any("illegal memory access" in line and "recorded for the next pass" in line for line in logs)
    debug = (tmp_path / ".state" / "logs" / "debug.log").read_text(encoding="utf-8")
    assert "Traceback" in debug and "illegal memory access" in debug  # the full story, for whoever debugs

    calls.clear()
    second, _ = recycle()  # nothing new: only the failed persona is done again
    assert calls == [broken.owner_id] and second["retried"] == 1 and second["failed"] == first["failed"]
    third, _ = recycle()
    assert load_state(storage).failed[f"text:{broken.owner_id}:{broken.persona}"].parked
    assert third["parked"] == [f"text refresh of {broken.owner_id}/{broken.persona}"]

    calls.clear()
    fourth, _ = recycle()  # parked: reported, not retried with every pass
    assert calls == [] and fourth["retried"] == 0 and fourth["parked"] == third["parked"]

    monkeypatch.setattr(tasks.training.train, "train_persona", real_train)  # the operator fixed the cause
    fixed, _ = recycle(retry_failed=True)
    assert fixed["retried"] == 1 and fixed["models_published"] == 1 and fixed["failed"] == []
    assert load_state(storage).failed == {} and storage.list(f"models/{broken.owner_id}/")
