"""Kill it and see: SIGKILL restore, recycling and forget at every kill point, run again, compare.

For each scenario the world before the command is built once (a template folder: lake, state,
search data) and the command run on a copy of it without faults: the reference. Then for each of
its kill points (infra/faults.py) a fresh copy runs the command with `REMEMBERME_FAULT=<point>`,
which SIGKILLs the command's process group there (the CLI and its temporary Prefect API server),
and then the same command again without the fault. The re-run must end in the reference's state:
the same messages, dataset contents, production models, documents in both indices, tombstones
and watermarks; no lock held, nothing failed or parked; for forget, every `left` count 0.

The whole matrix takes about 25 minutes on 2 cores: `make faults` runs it (marker `faults`);
`make test` leaves it out and runs the in-process kill-and-resume tests of each flow instead.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from elasticsearch import Elasticsearch

from infra.faults import POINTS
from infra.registry import Registry
from infra.storage import open_storage
from infra.versions import VersionedStore
from parsers.platform import synth
from schemas.search import MESSAGES_ALIAS, PAIRS_ALIAS
from tasks.ingest.platform import write_landing
from tasks.ingest.watermarks import load_state

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("rememberme"))
OWNER = "fault-owner"
START = date(2024, 3, 1)
LEASE_S = 10


def _env(world: Path, fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMEMBERME_", "PREFECT_"))}
    env |= {
        "PREFECT_HOME": str(world / "prefect"),
        "REMEMBERME_STATE_DIR": str(world / "state"),
        "REMEMBERME_TRAIN_MAX_STEPS": "4",
        "REMEMBERME_LOCK_LEASE_S": str(LEASE_S),
    }
    if fault:
        env["REMEMBERME_FAULT"] = fault
    return env


def _run(world: Path, args: list[str], fault: str | None = None) -> tuple[int, str, float]:
    """Exit code, stdout (then stderr after a marker line) and seconds of one CLI command."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [CLI, *args, "--lake", f"file://{world}/lake"], cwd=world, env=_env(world, fault),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, f"{out}\n--- stderr ---\n{err[-3000:]}", time.monotonic() - started


def _down(world: Path) -> None:
    subprocess.run([CLI, "services", "down"], cwd=world, env=_env(world), capture_output=True, timeout=120)


def _es(world: Path) -> Elasticsearch:
    from infra.services import elasticsearch_url
    from infra.settings import Settings

    return Elasticsearch(elasticsearch_url(Settings(state_dir=str(world / "state"))))


def _ids(client: Elasticsearch, alias: str) -> list[str]:
    if not client.indices.exists_alias(name=alias):
        return []
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, query={"term": {"owner_id": OWNER}}, size=10_000, source=False)
    return sorted(h["_id"] for h in hits["hits"]["hits"])


def fingerprint(world: Path) -> dict[str, Any]:
    """What a run leaves that users and the platform see (numbers, digests and ids; no names)."""
    lake = open_storage(f"file://{world}/lake")
    registry = Registry(lake)
    message_ids = []
    for key in lake.list(f"messages/owner={OWNER}/"):
        if key.endswith(".parquet"):
            message_ids += pq.read_table(io.BytesIO(lake.read_bytes(key)), columns=["message_id"])[
                "message_id"
            ].to_pylist()
    personas = sorted(
        {k.split("/")[2] for k in lake.list(f"datasets/{OWNER}/") + lake.list(f"models/{OWNER}/")}
    )
    datasets, production = {}, {}
    for persona in personas:
        store = VersionedStore(lake, f"datasets/{OWNER}/{persona}")
        datasets[persona] = [store.manifest(v)["content_hash"] for v in store.versions()]
        aliases = registry.aliases(OWNER, persona, "text")
        if "production" in aliases:
            manifest = registry.manifest(OWNER, persona, "text", aliases["production"])
            production[persona] = (
                aliases["production"],
                manifest["request"],
                manifest["dataset"]["content_hash"],
            )
    client = _es(world)
    try:
        search = {"messages": _ids(client, MESSAGES_ALIAS), "pairs": _ids(client, PAIRS_ALIAS)}
    finally:
        client.close()
    state = load_state(lake)
    return {
        "messages": sorted(message_ids),
        "raw": sorted(k for k in lake.list(f"raw/{OWNER}/") if not k.endswith("_ingest.json")),
        "datasets": datasets,
        "production": production,
        "model_versions": {p: registry.versions(OWNER, p, "text") for p in personas},
        "search": search,
        "tombstones": lake.list("state/tombstones/"),
        "watermarks": {s: m.through_dt for s, m in state.streams.items()},
        "failed": sorted(state.failed),
        "locks": lake.list("locks/"),
    }


def _restore(export: Path, persona: str) -> list[str]:
    return ["restore", str(export), "--owner", OWNER, "--persona", persona]


def _landing(world: Path) -> None:
    room = synth.Room("room-f", "private", "u-f1", "김순자", "엄마", OWNER, "민지네", ())
    write_landing(open_storage(f"file://{world}/lake"), synth.history([room], START, days=2, events_per_day=60,
                                                                        voice=0))  # fmt: skip


def _scenarios(
    export: Path,
) -> dict[str, tuple[list[list[str]], Callable[[Path], None] | None, list[str], list[str]]]:
    """name -> (commands that build the world, extra setup, the command under test, its kill points)."""
    recycle = ["recycle", "--as-of", (START + timedelta(days=1)).isoformat()]
    forget = ["forget", "--owner", OWNER, "--persona", "엄마", "--yes", "--json"]
    return {
        "restore": ([], None, _restore(export, "엄마"), [
            "ingest.messages_written", "ingest.raw_stored", "versions.files_written", "index.bulk_chunk",
            "train.step:2", "export.onnx", "versions.files_written:2", "registry.published", "restore.trained",
            "index.bulk_chunk:2",
        ]),
        "recycle": ([_restore(export, "엄마")], _landing, recycle, [
            "recycle.staged", "recycle.routed", "recycle.refreshed", "recycle.committed",
        ]),
        "forget": ([_restore(export, "엄마"), _restore(export, "나")], None, forget, [
            "forget.tombstone", "forget.rows", "forget.source", "forget.search", "forget.rebuilt",
            "forget.retrained", "forget.history",
        ]),
    }  # fmt: skip


@pytest.fixture(scope="module")
def group_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A family room of 엄마, 나 and 아빠: forgetting 엄마 leaves 나 pairs to rebuild, retrain and re-index."""
    from parsers.kakao.render import RenderOptions, render_export
    from parsers.kakao.synth import conversation

    path = tmp_path_factory.mktemp("group") / "kakao_android_ko.txt"
    lines = conversation(900, seed=13, others=("아빠",))
    path.write_text(render_export("android_ko", lines, RenderOptions(room="가족")), encoding="utf-8")
    return path


def test_every_kill_point_is_in_the_matrix(group_export: Path) -> None:
    covered = {p.split(":")[0] for _, _, _, points in _scenarios(group_export).values() for p in points}
    assert covered == set(POINTS)
    assert len(POINTS) >= 15


@pytest.fixture(scope="module")
def worlds(
    tmp_path_factory: pytest.TempPathFactory, group_export: Path
) -> Callable[[str], tuple[Path, dict[str, Any]]]:
    """Per scenario: its template world and the reference fingerprint (built once, on first use)."""
    built: dict[str, tuple[Path, dict[str, Any]]] = {}

    def get(name: str) -> tuple[Path, dict[str, Any]]:
        if name not in built:
            setup, extra, command, _ = _scenarios(group_export)[name]
            template = tmp_path_factory.mktemp(f"template-{name}")
            for args in setup:
                code, out, _ = _run(template, args)
                assert code == 0, out[-3000:]
            if extra:
                extra(template)
            _down(template)
            reference = tmp_path_factory.mktemp(f"reference-{name}")
            shutil.copytree(template, reference, dirs_exist_ok=True)
            code, out, seconds = _run(reference, command)
            assert code == 0, out[-3000:]
            expected = fingerprint(reference)
            _down(reference)
            assert expected["production"] and expected["search"]["pairs"], "it must publish and index"
            expected["_seconds"] = seconds
            built[name] = (template, expected)
        return built[name]

    return get


CASES = [(name, point) for name in ("restore", "recycle", "forget") for point in
         _scenarios(Path("export.txt"))[name][3]]  # fmt: skip


@pytest.mark.parametrize(("scenario", "point"), CASES, ids=[f"{s}-{p}" for s, p in CASES])
def test_a_run_killed_at_a_point_and_run_again_ends_as_if_never_killed(
    scenario: str,
    point: str,
    worlds: Callable[[str], tuple[Path, dict[str, Any]]],
    tmp_path: Path,
    group_export: Path,
) -> None:
    template, expected = worlds(scenario)
    command = _scenarios(group_export)[scenario][2]
    world = tmp_path / "world"
    shutil.copytree(template, world)
    try:
        code, out, killed_s = _run(world, command, fault=point)
        assert code == -signal.SIGKILL, f"{point} was never reached (exit {code}):\n{out[-3000:]}"
        code, out, rerun_s = _run(world, command)
        assert code == 0, out[-3000:]
        got = fingerprint(world)
        if scenario == "forget":
            receipt = json.loads(out.split("\n--- stderr ---\n")[0])
            assert all(v == 0 for v in receipt["left"].values()), receipt["left"]
    finally:
        _down(world)
    expected = {k: v for k, v in expected.items() if not k.startswith("_")}
    assert got == expected
    report = {"scenario": scenario, "point": point, "killed_after_s": round(killed_s, 1),
              "rerun_s": round(rerun_s, 1), "clean_s": round(expected_seconds(worlds, scenario), 1)}  # fmt: skip
    if os.environ.get("FAULTS_REPORT"):  # `make faults` collects these for its summary
        with Path(os.environ["FAULTS_REPORT"]).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(report) + "\n")


def expected_seconds(worlds: Callable[[str], tuple[Path, dict[str, Any]]], scenario: str) -> float:
    """How long the clean run of a scenario took (for the note's re-run times)."""
    return float(worlds(scenario)[1]["_seconds"])
