"""`make rehearsal`: run rememberme the way production runs it, on local processes, and break it.

Brings up the topology of infra/production/docker-compose.yml as real servers on 127.0.0.1
(infra/production/topology.py), then acts as the platform backend over the REST API with the
auth string (infra/production/scenarios.py, failures.py), prints each scenario's result and time,
and stops every process it started, also when interrupted (infra/production/processes.py).

    .venv/bin/python -m infra.production.rehearsal [--state DIR] [--only NAME ...]

Exit status 0 when every scenario passed, 1 otherwise; the report is also written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.production import failures, scenarios
from infra.production.alerts import WebhookReceiver, create_automations, create_webhook_block
from infra.production.processes import Processes, become_subreaper, interrupts_raise, sweep
from infra.production.topology import ROOT, Topology, down, up


@dataclass
class Outcome:
    """One scenario's result as printed and reported."""

    name: str
    passed: bool
    seconds: float
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)


Scenario = Callable[[scenarios.Context], scenarios.Result]

#: In order: each scenario leaves the topology as the next one expects it.
SCENARIOS: list[tuple[str, Scenario]] = [
    ("restore+recycling", scenarios.restore_while_recycling),
    ("ui", scenarios.ui_shows_runs),
    ("forget", scenarios.forget_on_request),
    ("dask-worker-killed", failures.dask_worker_killed),
    ("prefect-worker-killed", failures.prefect_worker_killed),
    ("postgres-stopped", failures.postgres_stopped),
    ("failed-run-notified", failures.failed_run_notified),
    ("parked-piece-notified", failures.parked_piece_notified),
    ("bench-restore", scenarios.bench_restore),
    ("bench-recycling", scenarios.bench_recycling),
]


def run_scenario(name: str, scenario: Scenario, ctx: scenarios.Context) -> Outcome:
    """Run one scenario, timing it; a failure is its one-line cause, not the end of the rehearsal."""
    t0 = time.monotonic()
    try:
        result = scenario(ctx)
        outcome = Outcome(name, result.passed, 0.0, result.detail, result.numbers)
    except Exception as exc:
        outcome = Outcome(
            name, False, 0.0, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
    outcome.seconds = round(time.monotonic() - t0, 1)
    print(
        f"[{'PASS' if outcome.passed else 'FAIL'}] {name:24} {outcome.seconds:7.1f}s  {outcome.detail}",
        flush=True,
    )
    return outcome


def rehearse(state: Path, only: Sequence[str] = ()) -> tuple[dict[str, float], list[Outcome]]:
    """Bring the topology up, run the scenarios, bring it down; (start-up times, outcomes)."""
    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True)
    top = Topology(state=state, procs=Processes(state / "logs"))
    top.extra_env.update(REMEMBERME_TRAIN_MAX_STEPS="20", REMEMBERME_LOCK_LEASE_S="30")
    receiver = WebhookReceiver()
    outcomes: list[Outcome] = []
    try:
        t0 = time.monotonic()
        steps = up(top)
        block = create_webhook_block(top.api, receiver.start())
        create_automations(top.api, block)
        steps["total"] = round(time.monotonic() - t0, 1)
        print(
            f"[UP]   topology {steps['total']:.1f}s  " + ", ".join(f"{k} {v}s" for k, v in steps.items()),
            flush=True,
        )
        ctx = scenarios.Context(top=top, receiver=receiver, out=state / "out")
        for name, scenario in SCENARIOS:
            if not only or name in only:
                outcomes.append(run_scenario(name, scenario, ctx))
        return steps, outcomes
    finally:
        receiver.stop()
        down(top)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the rehearsal, print the report; 0 when every scenario passed."""
    parser = argparse.ArgumentParser(prog="rehearsal", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--state", type=Path, default=ROOT / ".state" / "rehearsal", help="throw-away state folder"
    )
    parser.add_argument("--only", nargs="*", default=[], help="run only these scenarios (names as printed)")
    args = parser.parse_args(argv)
    become_subreaper()
    t0, load_before = time.monotonic(), os.getloadavg()
    try:
        with interrupts_raise():
            steps, outcomes = rehearse(args.state.resolve(), args.only)
    except KeyboardInterrupt as stop:
        print(f"rehearsal interrupted ({stop or 'Ctrl-C'}): every process stopped", file=sys.stderr)
        return 130
    finally:
        sweep()
    total = round(time.monotonic() - t0, 1)
    # The machine's load (1, 5, 15 min) before and after: times on a shared machine need it.
    load = {"before": load_before, "after": os.getloadavg()}
    report = {"total_s": total, "up_s": steps, "load": load, "scenarios": [asdict(o) for o in outcomes]}
    (args.state / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    passed = all(o.passed for o in outcomes)
    print(
        f"rehearsal {'passed' if passed else 'FAILED'} in {total:.0f}s, load average {load_before[0]:.1f} "
        f"before and {load['after'][0]:.1f} after (report: {args.state / 'report.json'})"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
