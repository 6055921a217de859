"""The production rehearsal (`make rehearsal`, infra/production/rehearsal.py) and what it relies on.

The slow tests run it whole (about 15 minutes on 2 cores): every scenario passes, in time, and no
process of it is left, also when it is interrupted. They start a whole production topology, so the
suite (`make test`) leaves them out unless asked: `REMEMBERME_REHEARSAL=1 pytest -m slow
tests/test_rehearsal.py` (`make rehearsal` runs the same script). The fast ones check its
declarations: the automations validate as Prefect's own model, a parked piece makes one event, the
deployments' pull step reads the worker's code folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from infra.production.alerts import BLOCK_PLACEHOLDER, automation_specs
from infra.production.rehearsal import SCENARIOS
from tasks.runs.events import PARKED_EVENT, parked_event, parked_now
from tasks.runs.retries import MAX_ATTEMPTS, RetryItem

ROOT = Path(__file__).resolve().parents[1]
rehearsal = pytest.mark.skipif(
    not os.environ.get("REMEMBERME_REHEARSAL"),
    reason="a whole production topology for 15 minutes: set REMEMBERME_REHEARSAL=1 (or run make rehearsal)",
)


def _ours(state: Path) -> list[str]:
    """Live processes started for the rehearsal in `state` (their command line or environment names it)."""
    left = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE or process.pid == os.getpid():
            continue
        try:
            text = " ".join(process.info["cmdline"] or []) + " " + " ".join(process.environ().values())
        except psutil.Error:
            continue
        if str(state) in text or "rememberme-rehearsal-pg-" in text:  # its cluster, when state is private
            left.append(f"{process.pid} {' '.join(process.info['cmdline'] or [])[:120]}")
    return left


def _rehearsal(state: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REMEMBERME_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "infra.production.rehearsal", "--state", str(state), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1800)
@rehearsal
def test_the_rehearsal_passes_every_scenario_in_time_and_leaves_no_process(tmp_path: Path) -> None:
    state = tmp_path / "rehearsal"
    process = _rehearsal(state)
    output, _ = process.communicate(timeout=1750)
    print(output)  # the scenario table, for whoever reads the test log
    assert process.returncode == 0, output[-4000:]
    report = json.loads((state / "report.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in report["scenarios"]] == [name for name, _ in SCENARIOS]
    assert all(s["passed"] for s in report["scenarios"])
    # The budget, on a machine doing nothing else (the report keeps the load average).
    assert report["total_s"] < 15 * 60, report["load"]
    bench = {s["name"]: s["numbers"] for s in report["scenarios"]}
    assert bench["bench-restore"]["worker_run_s"] and bench["bench-restore"]["in_process_run_s"]
    assert bench["bench-recycling"]["dask_run_s"] and bench["bench-recycling"]["threads_run_s"]
    assert (state / "out" / "ui-runs.png").stat().st_size > 10_000
    assert _ours(state) == []


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(600)
@rehearsal
def test_an_interrupted_rehearsal_stops_every_process_it_started(tmp_path: Path) -> None:
    state = tmp_path / "rehearsal"
    process = _rehearsal(state, "--only", "restore+recycling")
    assert process.stdout is not None
    deadline, seen = time.monotonic() + 300, []
    for line in process.stdout:  # the topology is up: every server of it runs
        seen.append(line)
        if line.startswith("[UP]") or time.monotonic() > deadline:
            break
    time.sleep(15)  # a restore and a recycling pass are under way on the workers and Dask
    assert len(_ours(state)) >= 10, "".join(seen)
    process.send_signal(signal.SIGTERM)  # what `make` or a CI timeout sends
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output[-3000:]
    assert "every process stopped" in output
    assert _ours(state) == []


def test_the_declared_automations_are_prefect_automations() -> None:
    from prefect.events.schemas.automations import AutomationCore

    raw = (ROOT / "infra" / "production" / "automations.yaml").read_text(encoding="utf-8")
    assert BLOCK_PLACEHOLDER in raw
    specs = automation_specs("00000000-0000-0000-0000-000000000001")
    automations = [AutomationCore.model_validate(spec) for spec in specs]
    assert [a.name for a in automations] == [
        "rememberme-crash-zombie-runs",
        "rememberme-notify-failed-run",
        "rememberme-notify-parked-piece",
    ]
    parked = automations[2].trigger
    assert PARKED_EVENT in parked.expect  # type: ignore[union-attr]


def test_only_a_piece_parked_by_this_pass_makes_an_event() -> None:
    def piece(owner: str, attempts: int) -> RetryItem:
        return RetryItem("text", owner, "엄마", error="JSONDecodeError: broken", attempts=attempts)

    just_parked, still_parked, retried = piece("a", MAX_ATTEMPTS), piece("b", MAX_ATTEMPTS), piece("c", 1)
    recorded = [p.to_dict() for p in (just_parked, still_parked, retried)]
    failed_now = [piece("a", MAX_ATTEMPTS - 1), piece("c", 0)]  # b was not attempted: parked before
    assert [p.owner_id for p in parked_now(failed_now, recorded)] == ["a"]
    event = parked_event(just_parked, "1234")
    assert event["event"] == PARKED_EVENT
    assert event["resource"]["prefect.resource.id"] == "rememberme.piece.text:a:엄마"
    assert event["resource"]["prefect.resource.name"] == "text refresh of a/엄마"
    assert event["payload"]["attempts"] == MAX_ATTEMPTS
    assert event["related"] == [
        {"prefect.resource.id": "prefect.flow-run.1234", "prefect.resource.role": "flow-run"}
    ]


def test_the_pull_step_reads_the_code_folder_of_the_worker() -> None:
    spec = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text(encoding="utf-8"))
    (step,) = spec["pull"]
    assert (
        step["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $REMEMBERME_CODE_DIR }}"
    )
    dockerfile = (ROOT / "infra" / "production" / "Dockerfile").read_text(encoding="utf-8")
    assert "ENV REMEMBERME_CODE_DIR=/opt/rememberme" in dockerfile
