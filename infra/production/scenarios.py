"""The rehearsal's working scenarios: what the platform backend does, and what it costs.

Each scenario takes the `Context` (the running topology, the webhook receiver, the output folder)
and returns a `Result`: passed, a one-line detail, and the numbers it measured.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.production import api as rest
from infra.production.alerts import WebhookReceiver
from infra.production.platform import SAMPLE, as_of, upload_export, write_days
from infra.production.processes import RehearsalError
from infra.production.topology import BIN, ROOT, Topology

RESTORE = "instant-restore/on-demand"
RECYCLING = "data-recycling/nightly"
FORGET = "forget/on-request"
PERSONA = "엄마"
#: Families of the generated platform data: one persona each, a recycling piece each.
ROOMS = 2


@dataclass
class Context:
    """What scenarios share: the topology, the notifications, where screenshots go, named runs."""

    top: Topology
    receiver: WebhookReceiver
    out: Path
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Dask worker address -> name, remembered (a killed worker leaves the scheduler's list).
    dask_names: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    """A scenario's verdict, its one-line detail and what it measured."""

    passed: bool
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)


def restore_params(owner_id: str, key: str, **extra: Any) -> dict[str, Any]:
    """The parameters the backend sends for a restore of the sample's 엄마."""
    return {"owner_id": owner_id, "persona": PERSONA, "sources": [key], **extra}


def on_worker(run: dict[str, Any], pool: str = "rememberme-cpu") -> bool:
    """Whether a worker of `pool` ran the flow run in a process of its own."""
    return run.get("work_pool_name") == pool and bool(run.get("infrastructure_pid"))


def summary_fields(api: rest.PrefectApi, run_id: str) -> dict[str, str]:
    """`- key: value` lines of the run's markdown artifacts (recycling's pass summary)."""
    fields: dict[str, str] = {}
    for line in rest.result_summary(api, run_id).splitlines():
        key, sep, value = line.removeprefix("- ").partition(": ")
        if line.startswith("- ") and sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def task_stream(ctx: Context, since: float) -> dict[str, set[str]]:
    """Task prefix -> names of the Dask workers that ran such tasks since `since` (epoch seconds)."""
    from dask.utils import key_split
    from distributed import Client

    with Client(ctx.top.dask_address, timeout=10) as client:  # type: ignore[no-untyped-call]
        workers = client.scheduler_info(n_workers=-1)["workers"]
        ctx.dask_names.update({a: str(w.get("name")) for a, w in workers.items()})
        records = client.get_task_stream(start=since)
    ran: dict[str, set[str]] = {}
    for record in records:
        ran.setdefault(key_split(record["key"]), set()).add(
            ctx.dask_names.get(record["worker"], record["worker"])
        )
    return ran


def pieces_on_dask(ran: dict[str, set[str]]) -> str:
    """`refresh_persona on dask-worker-1+2, index_owner on ...` for the recycling pieces."""
    shown = [
        f"{k} on {'+'.join(sorted(v))}"
        for k, v in sorted(ran.items())
        if k in ("refresh_persona", "index_owner")
    ]
    return ", ".join(shown) or "nothing on Dask"


def restore_while_recycling(ctx: Context) -> Result:
    """Upload an export and restore it; while that runs, a recycling pass fans out on Dask."""
    api, lake = ctx.top.api, ctx.top.lake()
    key = upload_export(lake, "rehearsal-a")
    restore = rest.create_run(api, RESTORE, restore_params("rehearsal-a", key))
    rest.wait_for(api, restore["id"], {"RUNNING"}, timeout_s=120)
    since = time.time()
    written = write_days(lake, ROOMS, 0, 3)
    recycle = rest.create_run(api, RECYCLING, {"as_of": as_of(0, 3)})
    done = {
        label: rest.wait_for(api, run["id"], timeout_s=600)
        for label, run in (("restore", restore), ("recycling", recycle))
    }
    ctx.runs.update(done)
    summary = summary_fields(api, recycle["id"])
    ran = task_stream(ctx, since)
    states = {label: rest.state_type(run) for label, run in done.items()}
    built = summary.get("personas_built")
    passed = (
        all(s == "COMPLETED" for s in states.values())
        and all(on_worker(run) for run in done.values())
        and built == str(ROOMS)
        and summary.get("failed") == "[]"
        and "refresh_persona" in ran
    )
    numbers = {f"{label}_s": rest.run_seconds(run) for label, run in done.items()}
    detail = (
        f"restore {states['restore']} in {numbers['restore_s']:.0f}s and recycling {states['recycling']} in "
        f"{numbers['recycling_s']:.0f}s on worker pids {done['restore'].get('infrastructure_pid')}/"
        f"{done['recycling'].get('infrastructure_pid')}; {written} landing files, {built} personas built; "
        f"{pieces_on_dask(ran)}"
    )
    if not passed:
        detail += _why(api, done)
    return Result(passed, detail, numbers)


def _why(api: rest.PrefectApi, runs: dict[str, dict[str, Any]]) -> str:
    """Each unfinished run's state message (what a failing scenario prints)."""
    parts = [
        f"{label}: {rest.state_message(run)}"
        for label, run in runs.items()
        if rest.state_type(run) != "COMPLETED"
    ]
    return (" | " + " | ".join(parts)) if parts else ""


def ui_shows_runs(ctx: Context) -> Result:
    """The Prefect UI (headless Chromium, logged in with the auth string) shows the runs."""
    from infra.production.ui import screenshot_runs

    names = [run["name"] for run in ctx.runs.values()]
    if not names:
        raise RehearsalError("no runs to look for (the first scenario did not run)")
    shots = screenshot_runs(
        ctx.top.ui_url, ctx.top.auth, names, [run["id"] for run in ctx.runs.values()], ctx.out
    )
    return Result(
        True, f"runs page and run pages show {', '.join(names)}: {', '.join(str(s) for s in shots)}"
    )


def forget_on_request(ctx: Context) -> Result:
    """Forget the restored persona through its deployment; the receipt's scan finds nothing left."""
    api = ctx.top.api
    run = rest.create_run(api, FORGET, {"owner_id": "rehearsal-a", "persona": PERSONA})
    done = rest.wait_for(api, run["id"], timeout_s=300)
    left = receipt_left(api, run["id"])
    nonzero = [f"{k}={v}" for k, v in left.items() if v != "0"]
    passed = rest.state_type(done) == "COMPLETED" and on_worker(done) and bool(left) and not nonzero
    detail = f"forget {rest.state_type(done)} in {rest.run_seconds(done) or 0:.0f}s on the worker; receipt: "
    detail += f"{len(left)} stores scanned, nothing left" if not nonzero else f"left {', '.join(nonzero)}"
    return Result(passed, detail + _why(api, {"forget": done}), {"forget_s": rest.run_seconds(done)})


def receipt_left(api: rest.PrefectApi, run_id: str) -> dict[str, str]:
    """The forget receipt's `## Left` counts (a scan of every store: each must be 0)."""
    left: dict[str, str] = {}
    inside = False
    for line in rest.result_summary(api, run_id).splitlines():
        if line.startswith("## "):
            inside = line.startswith("## Left")
        elif inside and line.startswith("- "):
            key, _, value = line[2:].partition(": ")
            left[key.strip()] = value.strip()
    return left


def cli(ctx: Context, *args: str, timeout_s: float = 600.0) -> tuple[float, dict[str, Any]]:
    """Run `rememberme ARGS --json` in-process against the same API and lake; (seconds, its JSON)."""
    t0 = time.monotonic()
    done = subprocess.run(
        [str(BIN / "rememberme"), *args, "--json"],
        env=ctx.top.client_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
    seconds = time.monotonic() - t0
    with (ctx.top.procs.logs / f"rememberme-{args[0]}.log").open("a", encoding="utf-8") as log:
        log.write(f"$ rememberme {' '.join(args)} --json  ({seconds:.1f}s, exit {done.returncode})\n")
        log.write(done.stderr)
    if done.returncode != 0:
        raise RehearsalError(
            f"rememberme {args[0]} exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, result


def latest_local_run(api: rest.PrefectApi, flow_name: str) -> dict[str, Any]:
    """The newest flow run of `flow_name` started without a deployment (the CLI's, in-process)."""
    body = {
        "flows": {"name": {"any_": [flow_name]}},
        "flow_runs": {"deployment_id": {"is_null_": True}, "parent_task_run_id": {"is_null_": True}},
        "sort": "START_TIME_DESC",
        "limit": 1,
    }
    found = api.call("POST", "/flow_runs/filter", body)
    if not found:
        raise RehearsalError(f"no in-process run of {flow_name} in the API")
    run: dict[str, Any] = found[0]
    return run


def bench_restore(ctx: Context) -> Result:
    """The sample restored on the worker (triggered over REST) and in-process (`rememberme restore`)."""
    api = ctx.top.api
    key = upload_export(ctx.top.lake(), "bench-worker")
    t0 = time.monotonic()
    run = rest.create_run(api, RESTORE, restore_params("bench-worker", key))
    worker = rest.wait_for(api, run["id"], timeout_s=600)
    worker_wall = time.monotonic() - t0
    local_wall, _ = cli(ctx, "restore", str(SAMPLE), "--owner", "bench-local", "--persona", PERSONA)
    local = latest_local_run(api, "instant-restore")
    numbers = {
        "worker_run_s": rest.run_seconds(worker),
        "worker_trigger_to_completed_s": round(worker_wall, 1),
        "in_process_run_s": rest.run_seconds(local),
        "in_process_command_s": round(local_wall, 1),
    }
    passed = (
        rest.state_type(worker) == "COMPLETED" and on_worker(worker) and rest.state_type(local) == "COMPLETED"
    )
    detail = (
        f"worker: run {numbers['worker_run_s'] or 0:.1f}s, REST trigger to Completed {worker_wall:.1f}s; "
        f"in-process: run {numbers['in_process_run_s'] or 0:.1f}s, `rememberme restore` {local_wall:.1f}s"
    )
    return Result(passed, detail + _why(api, {"worker": worker}), numbers)


def bench_recycling(ctx: Context) -> Result:
    """One pass over the same generated data: on the two Dask workers, and on the default runner."""
    api = ctx.top.api
    dask_lake, threads_lake = ctx.top.lake("bench-dask"), ctx.top.lake("bench-threads")
    write_days(dask_lake, ROOMS, 0, 3, owners="benchd")
    write_days(threads_lake, ROOMS, 0, 3, owners="bencht")
    since = time.time()
    t0 = time.monotonic()
    run = rest.create_run(api, RECYCLING, {"as_of": as_of(0, 3), "lake_url": dask_lake})
    on_dask = rest.wait_for(api, run["id"], timeout_s=600)
    dask_wall = time.monotonic() - t0
    ran = task_stream(ctx, since)
    threads_wall, threads_summary = cli(ctx, "recycle", "--as-of", as_of(0, 3), "--lake", threads_lake)
    threads = latest_local_run(api, "data-recycling")
    dask_summary = summary_fields(api, run["id"])
    numbers = {
        "dask_run_s": rest.run_seconds(on_dask),
        "dask_trigger_to_completed_s": round(dask_wall, 1),
        "threads_run_s": rest.run_seconds(threads),
        "threads_command_s": round(threads_wall, 1),
    }
    same = dask_summary.get("personas_built") == str(threads_summary["personas_built"]) == str(ROOMS)
    passed = rest.state_type(on_dask) == "COMPLETED" and same and "refresh_persona" in ran
    detail = (
        f"{ROOMS} personas: Dask (2 workers) run {numbers['dask_run_s'] or 0:.1f}s ({pieces_on_dask(ran)}); "
        f"default runner (threads, in-process) run {numbers['threads_run_s'] or 0:.1f}s, "
        f"command {threads_wall:.1f}s"
    )
    return Result(passed, detail + _why(api, {"dask": on_dask}), numbers)
