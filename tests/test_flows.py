"""End to end through Prefect: real temporary API (prefect_test_harness), real local Elasticsearch API."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import threading
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from infra.search import connect
from infra.storage import open_storage
from parsers.platform import synth
from schemas.search import MESSAGES_ALIAS
from tasks.ingest.platform import write_landing
from tests.flow_support import artifacts_of, indexed_count, recycle, subflows_of, task_states

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "kakao_android_ko.txt"
START = date(2024, 3, 1)


def test_instant_restore_end_to_end_and_rerun(
    es_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, family_export: Path
) -> None:
    from flows.restore import instant_restore

    monkeypatch.setenv("REMEMBERME_ES_URL", es_url)
    lake = f"file://{tmp_path}/lake"
    state = instant_restore(
        "flow-owner",
        "엄마",
        [str(family_export)],
        lake_url=lake,
        vectors=False,
        train_steps=40,
        return_state=True,
    )
    assert state.is_completed()
    result = state.result()
    assert result["messages"] == 800
    assert result["dataset"]["version"] == 1 and result["dataset"]["created"] is True
    assert result["dataset"]["counts"]["pairs_train"] > 100
    assert result["indexed"] == 800 and indexed_count(es_url, "flow-owner") == 800
    assert result["model"]["version"] == 1 and result["model"]["production"] is True
    assert result["reply"]["reply"] and result["reply"]["notice"]  # the new checkpoint answers
    assert result["voice"]["dataset"] is None  # the sample has no voice messages and no audio was given

    run_id = state.state_details.flow_run_id
    artifacts = {a.type: a for a in artifacts_of(run_id)}
    assert {"table", "markdown"} <= set(artifacts)
    keys = {a.key or "" for a in artifacts_of(run_id)}
    assert any(k.startswith("ingest-flow-owner") for k in keys)
    assert any(k.startswith("quality-flow-owner") for k in keys)
    assert any(k.startswith("restore-flow-owner") for k in keys)
    assert any(k.startswith("curve-flow-owner") for k in keys)
    assert any(k.startswith("model-card-flow-owner") for k in keys)
    curve = next(a for a in artifacts_of(run_id) if (a.key or "").startswith("curve-"))
    assert "data:image/svg+xml;base64," in curve.data and "| step | train loss |" in curve.data
    quality = next(a for a in artifacts_of(run_id) if (a.key or "").startswith("quality-"))
    assert "| step | rows in | rows out | changed |" in quality.data
    assert "밥" not in quality.data  # counts only: no message text in artifacts
    voice_run = subflows_of(run_id)["voice-restore"]  # the voice path is its own run in the UI
    assert voice_run.state_name == "Completed"
    assert task_states(voice_run.id) == {"restore-voice": "Completed"}  # no audio: no model to train
    states = task_states(run_id)
    assert states["ingest-upload"] == "Completed" and states["index-messages"] == "Completed"
    assert states["train-persona"] == "Completed" and states["first-reply"] == "Completed"

    again = instant_restore(
        "flow-owner", "엄마", [str(family_export)], lake_url=lake, vectors=False, train=False
    )
    assert again["dataset"]["created"] is False and again["dataset"]["version"] == 1
    assert indexed_count(es_url, "flow-owner") == 800  # re-run: no duplicates


def test_a_bad_export_fails_the_run_with_its_one_line_cause(tmp_path: Path) -> None:
    from flows.restore import instant_restore
    from parsers.errors import InputError

    bad = tmp_path / "notes.txt"
    bad.write_text("just some notes\nnot a chat\n", encoding="utf-8")
    state = instant_restore(
        "flow-owner", "엄마", [str(bad)], lake_url=f"file://{tmp_path}/lake", index=False, return_state=True
    )
    assert state.is_failed()
    with pytest.raises(
        InputError,
        match="not a recognised chat export",
    ):
        state.result()
    run_id = state.state_details.flow_run_id
    assert task_states(run_id)["ingest-upload"] == "Failed"  # no retries for bad input


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
    state = recycle(lake, START + timedelta(days=2), train=True, return_state=True)
    trained = state.result()
    assert trained["models_published"] == 1  # recycling retrains the changed persona
    keys = {a.key or "" for a in artifacts_of(state.state_details.flow_run_id)}
    assert any(k.startswith("curve-forget-owner") for k in keys)  # its curve and card are in the UI
    assert any(k.startswith("model-card-forget-owner") for k in keys)
    assert trained["voice_models_published"] == 1  # her recordings' transcripts train a voice
    voice_run = subflows_of(state.state_details.flow_run_id)["voice-recycling"]
    voice_keys = {a.key or "" for a in artifacts_of(voice_run.id)}
    assert any(k.startswith("voice-curve-forget-owner") for k in voice_keys)
    assert any(k.startswith("voice-model-card-forget-owner") for k in voice_keys)
    assert trained["voice_utterances"] == 3 and storage.list("voice/owner=forget-owner/audio/")
    assert indexed_count(es_url, "forget-owner") == 240
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
    after = recycle(lake, START + timedelta(days=3))
    assert after["chat_files"] == 1 and after["rows_routed"] == 0 and after["personas_built"] == 0


def test_one_restore_per_persona_at_a_time(tmp_path: Path) -> None:
    from infra.storage import open_storage
    from tasks.lifecycle.locks import persona_lock

    storage = open_storage(f"file://{tmp_path}/lake")
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with persona_lock("lock-owner", "엄마", storage):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(30)
    with pytest.raises(TimeoutError), persona_lock("lock-owner", "엄마", storage, timeout_s=2):
        pass
    with persona_lock("lock-owner", "아빠", storage, timeout_s=10):  # another persona is not blocked
        pass
    release.set()
    thread.join(30)
    with persona_lock("lock-owner", "엄마", storage, timeout_s=30):
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


def test_base_model_then_a_persona_fine_tuned_from_it(tmp_path: Path, family_export: Path) -> None:
    from flows.base_models import train_base
    from flows.restore import instant_restore
    from infra.registry import Registry
    from infra.settings import Settings
    from tasks.ingest.uploads import ingest_export

    lake = f"file://{tmp_path}/lake"
    storage = open_storage(lake)
    from tasks.trust.consent import set_base_opt_in

    ingest_export(family_export, "corpus-owner", storage, Settings())
    set_base_opt_in(storage, "corpus-owner", True)  # only opted-in uploads teach the base
    base = train_base(lake, steps=30)
    assert base["version"] == 1 and base["corpus"]["messages"] > 700
    result = instant_restore(
        "base-owner", "엄마", [str(family_export)], lake_url=lake, index=False, train_steps=20
    )
    manifest = Registry(storage).manifest("base-owner", "엄마", "text", result["model"]["version"])
    assert manifest["base_version"] == 1
    base_files = Registry(storage).load("platform", "base", "base").files
    assert (
        json.loads(base_files["config.json"]) == manifest["hyper_parameters"]["model"]
    )  # same shape as the base


def test_train_base_imports_a_local_pretrained_model(tmp_path: Path) -> None:
    from flows.base_models import train_base
    from tests.hf_support import save_tiny_hf

    lake = f"file://{tmp_path}/lake"
    state = train_base(lake, from_hf=str(save_tiny_hf(tmp_path / "tiny-llama")), return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result["version"] == 1 and result["corpus"]["imported_from"].endswith("tiny-llama")
    run_id = state.state_details.flow_run_id
    assert task_states(run_id) == {"import-base": "Completed", "report-training": "Completed"}
    curve = next(a for a in artifacts_of(run_id) if (a.key or "").startswith("curve-"))
    assert "Imported pretrained model" in curve.data and "not trained here" in curve.data


@pytest.mark.skipif(
    not shutil.which("espeak-ng"), reason="espeak-ng comes from Debian (make test installs it)"
)
def test_restore_with_audio_trains_a_voice_in_its_subflow(tmp_path: Path, family_export: Path) -> None:
    from flows.restore import instant_restore

    audio = []
    for i, text in enumerate(["밥은 먹었니", "따뜻하게 입고 다녀", "주말에 집에 올 수 있어"]):
        wav = tmp_path / f"voice-{i}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", text, "-w", str(wav)], check=True)
        wav.with_suffix(".txt").write_text(text, encoding="utf-8")  # its transcript
        audio.append(str(wav))
    state = instant_restore(
        "voice-owner", "엄마", [str(family_export)], lake_url=f"file://{tmp_path}/lake", index=False,
        train_steps=20, audio=audio, return_state=True,
    )  # fmt: skip
    voice = state.result()["voice"]
    assert voice["dataset"]["with_transcript"] == 3 and voice["model_version"] == 1
    voice_run = subflows_of(state.state_details.flow_run_id)["voice-restore"]
    assert task_states(voice_run.id) == {
        "restore-voice": "Completed",
        "train-voice": "Completed",
        "report-training": "Completed",
    }
    keys = {a.key or "" for a in artifacts_of(voice_run.id)}
    assert any(k.startswith("voice-curve-voice-owner") for k in keys)
    assert any(k.startswith("voice-model-card-voice-owner") for k in keys)
