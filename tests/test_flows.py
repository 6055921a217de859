"""End to end through Prefect: real temporary API (prefect_test_harness), real local Elasticsearch API."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pyarrow.parquet as pq
import pytest

from infra.search import connect
from infra.storage import Storage, open_storage
from parsers.platform import synth
from schemas.search import MESSAGES_ALIAS
from tasks.ingest.platform import write_landing

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "kakao_android_ko.txt"
START = date(2024, 3, 1)


def _artifacts(flow_run_id: UUID | None) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id] if flow_run_id else [])
            )
        )


def _subflows(flow_run_id: UUID | None) -> dict[str, Any]:
    """Flow name -> the child flow run of `flow_run_id` (the voice path runs as a subflow)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id] if flow_run_id else [])
            )
        )
        return {client.read_flow(r.flow_id).name: r for r in runs}


def _task_states(flow_run_id: UUID | None) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id] if flow_run_id else []))
        )
    return {r.name.rsplit("-", 1)[0]: r.state_name or "" for r in runs}


def _count(es_url: str, owner: str) -> int:
    client = connect(es_url)
    client.indices.refresh(index=MESSAGES_ALIAS)
    return int(client.count(index=MESSAGES_ALIAS, query={"term": {"owner_id": owner}})["count"])


def test_instant_restore_end_to_end_and_rerun(
    es_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.restore import instant_restore

    monkeypatch.setenv("REMEMBERME_ES_URL", es_url)
    lake = f"file://{tmp_path}/lake"
    state = instant_restore(
        "flow-owner", "엄마", [str(SAMPLE)], lake_url=lake, vectors=False, train_steps=40, return_state=True
    )
    assert state.is_completed()
    result = state.result()
    assert result["messages"] == 3000
    assert result["dataset"]["version"] == 1 and result["dataset"]["created"] is True
    assert result["dataset"]["counts"]["pairs_train"] > 100
    assert result["indexed"] == 3000 and _count(es_url, "flow-owner") == 3000
    assert result["model"]["version"] == 1 and result["model"]["production"] is True
    assert result["reply"]["reply"] and result["reply"]["notice"]  # the new checkpoint answers
    assert result["voice"]["dataset"] is None  # the sample has no voice messages and no audio was given

    run_id = state.state_details.flow_run_id
    artifacts = {a.type: a for a in _artifacts(run_id)}
    assert {"table", "markdown"} <= set(artifacts)
    keys = {a.key or "" for a in _artifacts(run_id)}
    assert any(k.startswith("ingest-flow-owner") for k in keys)
    assert any(k.startswith("quality-flow-owner") for k in keys)
    assert any(k.startswith("restore-flow-owner") for k in keys)
    assert any(k.startswith("curve-flow-owner") for k in keys)
    assert any(k.startswith("model-card-flow-owner") for k in keys)
    curve = next(a for a in _artifacts(run_id) if (a.key or "").startswith("curve-"))
    assert "data:image/svg+xml;base64," in curve.data and "| step | train loss |" in curve.data
    quality = next(a for a in _artifacts(run_id) if (a.key or "").startswith("quality-"))
    assert "| step | rows in | rows out | changed |" in quality.data
    assert "밥" not in quality.data  # counts only: no message text in artifacts
    voice_run = _subflows(run_id)["voice-restore"]  # the voice path is its own run in the UI
    assert voice_run.state_name == "Completed"
    assert _task_states(voice_run.id) == {"restore-voice": "Completed"}  # no audio: no model to train
    states = _task_states(run_id)
    assert states["ingest-upload"] == "Completed" and states["index-messages"] == "Completed"
    assert states["train-persona"] == "Completed" and states["first-reply"] == "Completed"

    again = instant_restore("flow-owner", "엄마", [str(SAMPLE)], lake_url=lake, vectors=False, train=False)
    assert again["dataset"]["created"] is False and again["dataset"]["version"] == 1
    assert _count(es_url, "flow-owner") == 3000  # re-run: no duplicates


def test_a_bad_export_fails_the_run_with_its_one_line_cause(tmp_path: Path) -> None:
    from flows.restore import instant_restore
    from parsers.errors import InputError

    bad = tmp_path / "notes.txt"
    bad.write_text("just some notes\nnot a chat\n", encoding="utf-8")
    state = instant_restore(
        "flow-owner", "엄마", [str(bad)], lake_url=f"file://{tmp_path}/lake", index=False, return_state=True
    )
    assert state.is_failed()
    with pytest.raises(InputError, match="not a recognised KakaoTalk export"):
        state.result()
    run_id = state.state_details.flow_run_id
    assert _task_states(run_id)["ingest-upload"] == "Failed"  # no retries for bad input


def _recycle(lake: str, as_of: date, **kwargs: Any) -> Any:
    from flows.recycle import data_recycling

    return data_recycling(as_of=as_of, lake_url=lake, vectors=False, **{"train": False, **kwargs})


def _lake_snapshot(storage: Storage) -> dict[str, Any]:
    """Every Message row per owner (sorted ids) plus the recycling state: the final state to compare."""
    out: dict[str, Any] = {}
    for key in storage.list("messages/"):
        rows = pq.read_table(io.BytesIO(storage.read_bytes(key))).to_pylist()
        owner = key.split("/")[1]
        out.setdefault(owner, []).extend((r["message_id"], r["speaker"], r["text"]) for r in rows)
    state = json.loads(storage.read_bytes("state/watermarks.json"))
    return {"rows": {k: sorted(v) for k, v in out.items()}, "state": state}


def test_recycling_is_incremental_and_idempotent(es_url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REMEMBERME_ES_URL", es_url)
    lake = f"file://{tmp_path}/lake"
    storage = open_storage(lake)
    rooms = synth.world(5, seed=5)
    write_landing(storage, synth.history(rooms, START, days=6, events_per_day=150))
    first = _recycle(lake, START + timedelta(days=5))
    assert first["chat_files"] == 6 and first["rows_routed"] == 900
    assert first["indexed"] == 900 and first["personas_built"] >= 1
    owners = {r.owner_id for r in rooms}
    assert sum(_count(es_url, o) for o in owners) == 900

    second = _recycle(lake, START + timedelta(days=5))
    assert (second["chat_files"], second["rows_routed"], second["indexed"], second["personas_built"]) == (
        0,
        0,
        0,
        0,
    )

    write_landing(storage, synth.day_files(rooms, START + timedelta(days=6), events=40, seed=5))
    third = _recycle(lake, START + timedelta(days=6))
    assert third["chat_files"] == 1 and third["rows_routed"] == 40 and third["indexed"] == 40
    assert sum(_count(es_url, o) for o in owners) == 940
    snapshot = _lake_snapshot(storage)
    for rows in snapshot["rows"].values():
        assert len({r[0] for r in rows}) == len(rows)


def test_a_recycling_run_that_dies_half_way_is_finished_by_the_next(tmp_path: Path, monkeypatch) -> None:
    import tasks.ingest.recycling

    rooms = synth.world(4, seed=8)
    files = synth.history(rooms, START, days=4, events_per_day=120)
    reference = open_storage(f"file://{tmp_path}/reference")
    write_landing(reference, files)
    _recycle(reference.url, START + timedelta(days=3), index=False)

    crashed = open_storage(f"file://{tmp_path}/crashed")
    write_landing(crashed, files)
    real_commit = tasks.ingest.recycling.commit_pass

    def die(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("worker killed")  # after every write of the pass, before the watermark

    monkeypatch.setattr(tasks.ingest.recycling, "commit_pass", die)
    with pytest.raises(RuntimeError, match="worker killed"):
        _recycle(crashed.url, START + timedelta(days=3), index=False)
    assert not crashed.exists("state/watermarks.json")
    monkeypatch.setattr(tasks.ingest.recycling, "commit_pass", real_commit)
    rerun = _recycle(crashed.url, START + timedelta(days=3), index=False)
    assert rerun["chat_files"] == 4  # redone from the same position
    assert _lake_snapshot(crashed) == _lake_snapshot(reference)


def test_forget_removes_a_persona_and_recycling_never_brings_it_back(
    es_url: str, tmp_path: Path, monkeypatch
) -> None:
    from flows.forget import forget

    monkeypatch.setenv("REMEMBERME_ES_URL", es_url)
    monkeypatch.setenv("REMEMBERME_TRAIN_MAX_STEPS", "10")
    lake = f"file://{tmp_path}/lake"
    storage = open_storage(lake)
    rooms = [synth.Room("room-f", "private", "u-f1", "김순자", "엄마", "forget-owner", "민지네", ())]
    write_landing(storage, synth.history(rooms, START, days=3, events_per_day=80, voice=1))
    state = _recycle(lake, START + timedelta(days=2), train=True, return_state=True)
    trained = state.result()
    assert trained["models_published"] == 1  # recycling retrains the changed persona
    keys = {a.key or "" for a in _artifacts(state.state_details.flow_run_id)}
    assert any(k.startswith("curve-forget-owner") for k in keys)  # its curve and card are in the UI
    assert any(k.startswith("model-card-forget-owner") for k in keys)
    assert trained["voice_models_published"] == 1  # her recordings' transcripts train a voice
    voice_run = _subflows(state.state_details.flow_run_id)["voice-recycling"]
    voice_keys = {a.key or "" for a in _artifacts(voice_run.id)}
    assert any(k.startswith("voice-curve-forget-owner") for k in voice_keys)
    assert any(k.startswith("voice-model-card-forget-owner") for k in voice_keys)
    assert trained["voice_utterances"] == 3 and storage.list("voice/owner=forget-owner/audio/")
    assert _count(es_url, "forget-owner") == 240
    assert storage.list("datasets/forget-owner/") and storage.list("models/forget-owner/")

    receipt = forget("forget-owner", "엄마", lake_url=lake)
    assert receipt["source"]["rows_removed"] > 0 and receipt["derived"]["documents_deleted"] > 0
    assert all(v == 0 for v in receipt["left"].values()), receipt["left"]
    assert receipt["prefect"]["artifacts"] >= 1 and receipt["prefect"]["events"] >= 1
    assert storage.list("datasets/forget-owner/") == [] and storage.list("models/forget-owner/") == []
    assert storage.list("voice/owner=forget-owner/audio/") == []  # her voice too
    table = pq.read_table(io.BytesIO(storage.read_bytes(storage.list("messages/owner=forget-owner/")[0])))
    assert "엄마" not in set(table["speaker"].to_pylist())
    client = connect(es_url)
    client.indices.refresh(index=MESSAGES_ALIAS)
    mom = client.count(
        index=MESSAGES_ALIAS,
        query={"bool": {"filter": [{"term": {"owner_id": "forget-owner"}}, {"term": {"speaker": "엄마"}}]}},
    )["count"]
    assert mom == 0

    write_landing(storage, synth.day_files(rooms, START + timedelta(days=3), events=30, seed=1))
    after = _recycle(lake, START + timedelta(days=3))
    assert after["chat_files"] == 1 and after["rows_routed"] == 0 and after["personas_built"] == 0


def test_one_restore_per_persona_at_a_time() -> None:
    from tasks.lifecycle.locks import persona_lock

    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with persona_lock("lock-owner", "엄마"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(30)
    with pytest.raises(TimeoutError), persona_lock("lock-owner", "엄마", timeout_s=2):
        pass
    with persona_lock("lock-owner", "아빠", timeout_s=10):  # another persona is not blocked
        pass
    release.set()
    thread.join(30)
    with persona_lock("lock-owner", "엄마", timeout_s=30):
        pass


def test_cli_restore_fails_in_one_line_without_traceback(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("rememberme")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMEMBERME_", "PREFECT_API"))}
    env["REMEMBERME_STATE_DIR"] = str(tmp_path / "state")
    env.pop("PREFECT_HOME", None)
    proc = subprocess.run(
        [str(exe), "restore", str(SAMPLE), "--owner", "x", "--persona", "누구", "--no-index",
         "--lake", f"file://{tmp_path}/lake"],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert (
        "rememberme: error: persona '누구': matches no speaker of owner x; speakers found: 엄마 (1555), 나 (1445)"
        in proc.stderr.splitlines()
    )


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
    _recycle(reference.url, as_of, index=False)

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

    rerun = _recycle(killed.url, as_of, index=False)
    assert rerun["chat_files"] == 20
    assert _lake_snapshot(killed) == _lake_snapshot(reference)


def test_base_model_then_a_persona_fine_tuned_from_it(tmp_path: Path) -> None:
    from flows.base import train_base
    from flows.restore import instant_restore
    from infra.registry import Registry
    from infra.settings import Settings
    from tasks.ingest.uploads import ingest_export

    lake = f"file://{tmp_path}/lake"
    storage = open_storage(lake)
    from tasks.trust.consent import set_base_opt_in

    ingest_export(SAMPLE, "corpus-owner", storage, Settings())
    set_base_opt_in(storage, "corpus-owner", True)  # only opted-in uploads teach the base
    base = train_base(lake, steps=30)
    assert base["version"] == 1 and base["corpus"]["messages"] > 2000
    result = instant_restore("base-owner", "엄마", [str(SAMPLE)], lake_url=lake, index=False, train_steps=20)
    manifest = Registry(storage).manifest("base-owner", "엄마", "text", result["model"]["version"])
    assert manifest["base_version"] == 1
    base_files = Registry(storage).load("platform", "base", "base").files
    assert (
        json.loads(base_files["config.json"]) == manifest["hyper_parameters"]["model"]
    )  # same shape as the base


def test_train_base_imports_a_local_pretrained_model(tmp_path: Path) -> None:
    from flows.base import train_base
    from tests.hf_support import save_tiny_hf

    lake = f"file://{tmp_path}/lake"
    state = train_base(lake, from_hf=str(save_tiny_hf(tmp_path / "tiny-llama")), return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result["version"] == 1 and result["corpus"]["imported_from"].endswith("tiny-llama")
    run_id = state.state_details.flow_run_id
    assert _task_states(run_id) == {"import-base": "Completed", "report-training": "Completed"}
    curve = next(a for a in _artifacts(run_id) if (a.key or "").startswith("curve-"))
    assert "Imported pretrained model" in curve.data and "not trained here" in curve.data


@pytest.mark.skipif(
    not shutil.which("espeak-ng"), reason="espeak-ng comes from Debian (make test installs it)"
)
def test_restore_with_audio_trains_a_voice_in_its_subflow(tmp_path: Path) -> None:
    from flows.restore import instant_restore

    audio = []
    for i, text in enumerate(["밥은 먹었니", "따뜻하게 입고 다녀", "주말에 집에 올 수 있어"]):
        wav = tmp_path / f"voice-{i}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", text, "-w", str(wav)], check=True)
        wav.with_suffix(".txt").write_text(text, encoding="utf-8")  # its transcript
        audio.append(str(wav))
    state = instant_restore(
        "voice-owner", "엄마", [str(SAMPLE)], lake_url=f"file://{tmp_path}/lake", index=False,
        train_steps=20, audio=audio, return_state=True,
    )  # fmt: skip
    voice = state.result()["voice"]
    assert voice["dataset"]["with_transcript"] == 3 and voice["model_version"] == 1
    voice_run = _subflows(state.state_details.flow_run_id)["voice-restore"]
    assert _task_states(voice_run.id) == {
        "restore-voice": "Completed",
        "train-voice": "Completed",
        "report-training": "Completed",
    }
    keys = {a.key or "" for a in _artifacts(voice_run.id)}
    assert any(k.startswith("voice-curve-voice-owner") for k in keys)
    assert any(k.startswith("voice-model-card-voice-owner") for k in keys)
