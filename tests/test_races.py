"""Restore, recycling and forget of one owner racing in separate processes (each its own Prefect).

Separate Prefect servers share no concurrency limits: only the persona lease in the lake can
keep them apart. Whatever the interleaving, a persona ends fully there or fully gone.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from infra.registry import Registry
from infra.storage import Storage, open_storage
from infra.versions import VersionedStore, read_verified
from parsers.kakao.render import render_export
from parsers.kakao.synth import conversation
from parsers.platform import synth
from tasks.ingest.platform import write_landing

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "kakao_android_ko.txt"
START = date(2024, 3, 1)
OWNER = "race-owner"


def _speakers(storage: Storage) -> set[str]:
    names: set[str] = set()
    for key in storage.list(f"messages/owner={OWNER}/"):
        if key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["speaker"])
            names.update(s for s in table["speaker"].to_pylist() if s)
    return names


def _whole(storage: Storage, persona: str) -> bool:
    """Its words, its newest dataset (verified) and any published model's dataset are all there."""
    if persona not in _speakers(storage):
        return False
    store = VersionedStore(storage, f"datasets/{OWNER}/{persona}")
    latest = store.latest()
    if latest is None:
        return False
    for name in latest["files"]:
        read_verified(storage, f"{store.base}/v{latest['version']}/{name}")
    registry = Registry(storage)
    if not registry.versions(OWNER, persona, "text"):
        return True
    trained = registry.load(OWNER, persona, "text").manifest
    return int(trained["dataset"]["version"]) in store.versions()


def _gone(storage: Storage, persona: str) -> bool:
    return (
        persona not in _speakers(storage)
        and storage.list(f"datasets/{OWNER}/{persona}/") == []
        and storage.list(f"models/{OWNER}/{persona}/") == []
    )


def test_restore_recycle_and_forget_racing_leave_each_persona_whole_or_gone(
    tmp_path: Path, es_url: str
) -> None:
    lake = open_storage(f"file://{tmp_path}/lake")
    dad = tmp_path / "dad.txt"  # a second persona of the owner, in conversations 엄마 is not part of
    lines = conversation(500, seed=5, persona="아빠", user="민수", start=datetime(2024, 2, 1, 9, 0))
    dad.write_text(render_export("android_ko", lines), encoding="utf-8")
    room = synth.Room("room-r", "private", "u-r1", "김순자", "엄마", OWNER, "민지네", ())
    write_landing(lake, synth.history([room], START, days=3, events_per_day=80, voice=0))
    cli = str(Path(sys.executable).with_name("rememberme"))
    common = ["--lake", lake.url]
    commands = {
        "restore-mom": [cli, "restore", str(SAMPLE), "--owner", OWNER, "--persona", "엄마", "--no-index",
                        "--no-train", *common],
        "restore-dad": [cli, "restore", str(dad), "--owner", OWNER, "--persona", "아빠", "--no-index",
                        "--no-train", *common],
        "recycle": [cli, "recycle", "--as-of", (START + timedelta(days=2)).isoformat(), "--no-index",
                    *common],
        "forget-mom": [cli, "forget", "--owner", OWNER, "--persona", "엄마", "--yes", "--json", *common],
    }  # fmt: skip
    procs = {}
    for name, command in commands.items():
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REMEMBERME_", "PREFECT_"))}
        env |= {
            "PREFECT_HOME": str(tmp_path / f"prefect-{name}"),  # its own server: no shared limits
            "REMEMBERME_STATE_DIR": str(tmp_path / "state"),
            "REMEMBERME_ES_URL": es_url,
            "REMEMBERME_TRAIN_MAX_STEPS": "10",
        }
        procs[name] = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    out = {name: proc.communicate(timeout=900) for name, proc in procs.items()}
    codes = {name: proc.returncode for name, proc in procs.items()}
    for name in ("restore-dad", "recycle", "forget-mom"):
        assert codes[name] == 0, (name, out[name][1][-2000:])
    if codes["restore-mom"] != 0:  # refused, never half done: one line, no traceback
        assert "Traceback" not in out["restore-mom"][1], out["restore-mom"][1][-2000:]
    listing = [k for k in lake.list("") if k.startswith(("datasets/", "models/", "state/"))]
    assert _whole(lake, "아빠"), (listing, {n: o[0][-800:] for n, o in out.items()})
    assert _whole(lake, "엄마") or _gone(lake, "엄마")
    assert lake.list("locks/") == []
    receipt = json.loads(out["forget-mom"][0])  # the forget succeeded (asserted above): its receipt
    assert receipt["left"] and all(v == 0 for v in receipt["left"].values()), receipt["left"]


SEEDS = range(20)


@pytest.fixture(scope="module")
def race_template(tmp_path_factory: pytest.TempPathFactory, family_export: Path) -> Path:
    """An owner whose 엄마 is restored (trained, indexed) and whose platform room holds new talk of hers."""
    world = tmp_path_factory.mktemp("race-template")
    code, out = _cli(world, ["restore", str(family_export), "--owner", OWNER, "--persona", "엄마"], {})
    assert code == 0, out
    room = synth.Room("room-r", "private", "u-r1", "김순자", "엄마", OWNER, "민지네", ())
    write_landing(open_storage(f"file://{world}/lake"), synth.history([room], START, days=2, events_per_day=60,
                                                                        voice=0))  # fmt: skip
    _cli(world, ["services", "down"], {}, lake=False)
    return world


def _cli(world: Path, args: list[str], extra: dict[str, str], lake: bool = True,
         delay_s: float = 0.0) -> tuple[int, str]:  # fmt: skip
    cli = str(Path(sys.executable).with_name("rememberme"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMEMBERME_", "PREFECT_"))}
    env |= {
        "PREFECT_HOME": str(world / f"prefect-{args[0]}"),  # its own server: no shared limits
        "REMEMBERME_STATE_DIR": str(world / "state"),
        "REMEMBERME_TRAIN_MAX_STEPS": "4",
        "REMEMBERME_LOCK_LEASE_S": "10",
        **extra,
    }
    time.sleep(delay_s)
    command = [cli, *args, *(["--lake", f"file://{world}/lake"] if lake else [])]
    proc = subprocess.run(command, cwd=world, env=env, capture_output=True, text=True, timeout=900)
    return proc.returncode, proc.stdout if proc.returncode == 0 else proc.stdout + proc.stderr[-3000:]


@pytest.mark.faults
@pytest.mark.parametrize("seed", SEEDS)
def test_forget_racing_a_recycling_pass_never_brings_the_person_back(
    seed: int, race_template: Path, tmp_path: Path
) -> None:
    """Forget and a recycling pass over the same persona, started apart by a seeded delay and paused
    at every kill point for seeded times: whatever the interleaving, after the receipt she is gone
    from the lake, both indices and every model, and stays gone.
    """
    import random
    from concurrent.futures import ThreadPoolExecutor

    from infra.search import count_documents
    from infra.services import elasticsearch_url
    from infra.settings import Settings
    from schemas.search import MESSAGES_ALIAS, PAIRS_ALIAS
    from tasks.ingest.watermarks import load_state

    world = tmp_path / "world"
    shutil.copytree(race_template, world)
    rng = random.Random(seed)
    offset = rng.uniform(0.0, 25.0)  # the forget starts anywhere in the pass's first half
    recycle = ["recycle", "--as-of", (START + timedelta(days=1)).isoformat()]
    forget = ["forget", "--owner", OWNER, "--persona", "엄마", "--yes", "--json"]
    try:
        with ThreadPoolExecutor(2) as pool:
            passing = pool.submit(_cli, world, recycle, {"REMEMBERME_FAULT_DELAY": f"{seed}:0.4"})
            forgetting = pool.submit(_cli, world, forget, {"REMEMBERME_FAULT_DELAY": f"{seed + 100}:0.4"},
                                     True, offset)  # fmt: skip
            (pass_code, pass_out), (forget_code, forget_out) = passing.result(), forgetting.result()
        assert forget_code == 0, forget_out
        assert pass_code == 0, pass_out
        receipt = json.loads(forget_out)
        assert all(v == 0 for v in receipt["left"].values()), receipt["left"]
        lake = open_storage(f"file://{world}/lake")
        assert "엄마" not in _speakers(lake)
        assert lake.list(f"datasets/{OWNER}/엄마/") == [] and lake.list(f"models/{OWNER}/엄마/") == []
        assert not any(i.persona == "엄마" for i in load_state(lake).failed.values())
        from elasticsearch import Elasticsearch

        client = Elasticsearch(elasticsearch_url(Settings(state_dir=str(world / "state"))))
        try:
            assert count_documents(client, MESSAGES_ALIAS, OWNER, ["엄마"]) == 0
            assert count_documents(client, PAIRS_ALIAS, OWNER, persona_id="엄마") == 0
        finally:
            client.close()
        assert lake.list("locks/") == []
    finally:
        _cli(world, ["services", "down"], {}, lake=False)


def test_indexing_never_brings_back_a_subject_forgotten_before_or_during_the_write(
    tmp_path: Path, es_url: str, family_export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indexing holds no persona lock in a recycling pass: tombstones are checked before and after."""
    from infra.search import connect, count_documents, index_messages
    from infra.settings import Settings
    from schemas.search import MESSAGES_ALIAS
    from tasks.indexing import indexer
    from tasks.ingest.lake import load_message_table
    from tasks.ingest.uploads import ingest_export
    from tasks.lifecycle.forget import Subject, write_tombstone

    lake = open_storage(f"file://{tmp_path}/lake")
    owner = "index-race"
    ingest_export(family_export, owner, lake, Settings())
    table = load_message_table(lake, owner)  # read before the forget, as a racing pass does
    client = connect(es_url)
    write_tombstone(lake, Subject(owner, ["엄마"]))
    indexer.index_table(lake, client, owner, table)
    assert count_documents(client, MESSAGES_ALIAS, owner, ["엄마"]) == 0
    assert count_documents(client, MESSAGES_ALIAS, owner, ["나"]) > 0

    # The tombstone lands after the check, while the documents are being written (and the forget
    # deleted what was there before them): the check after the write deletes them.
    other = "index-race-2"
    ingest_export(family_export, other, lake, Settings())
    table = load_message_table(lake, other)

    def forget_meanwhile(*args: Any, **kwargs: Any) -> Any:
        report = index_messages(*args, **kwargs)
        write_tombstone(lake, Subject(other, ["엄마"]))
        return report

    monkeypatch.setattr(indexer, "index_messages", forget_meanwhile)
    indexer.index_table(lake, client, other, table)
    client.indices.refresh(index=MESSAGES_ALIAS)
    assert count_documents(client, MESSAGES_ALIAS, other, ["엄마"]) == 0
    assert count_documents(client, MESSAGES_ALIAS, other, ["나"]) > 0
