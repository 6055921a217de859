"""The rehearsal's failure scenarios: processes die, the database goes away, operators are told.

Operators hear of failed runs and parked pieces through the automations of automations.yaml.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from infra.production import api as rest
from infra.production.platform import as_of, upload_export, write_days
from infra.production.processes import RehearsalError, wait_until
from infra.production.scenarios import (
    FORGET,
    RECYCLING,
    RESTORE,
    ROOMS,
    Context,
    Result,
    _why,
    cli,
    on_worker,
    pieces_on_dask,
    restore_params,
    summary_fields,
    task_stream,
)
from infra.production.topology import (
    DASK_WORKERS,
    dask_workers,
    start_dask_worker,
    start_postgres,
    start_worker,
)
from infra.production.topology import stop_postgres as stop_database
from infra.storage import open_storage

PG_OUTAGE_S = 30.0


def busy_dask_worker(ctx: Context, prefix: str = "refresh_persona", timeout_s: float = 300.0) -> str:
    """The name of a Dask worker processing a `prefix` task now (waits for one)."""
    from distributed import Client

    found: list[str] = []
    with Client(ctx.top.dask_address, timeout=10) as client:  # type: ignore[no-untyped-call]

        def busy() -> bool:
            workers = client.scheduler_info(n_workers=-1)["workers"]
            names = {a: str(w.get("name")) for a, w in workers.items()}
            ctx.dask_names.update(names)
            for address, keys in client.processing().items():
                if any(str(k).startswith(prefix) for k in keys):
                    found.append(names[address])
                    return True
            return False

        wait_until(busy, timeout_s, f"a Dask worker running {prefix}", every_s=0.3)
    return found[0]


def dask_worker_killed(ctx: Context) -> Result:
    """SIGKILL a Dask worker (its nanny and process) mid-pass: the pass completes on the other one."""
    api, lake = ctx.top.api, ctx.top.lake()
    write_days(lake, ROOMS, 3, 2)  # two more days of the same families: every persona changes
    since = time.time()
    run = rest.create_run(api, RECYCLING, {"as_of": as_of(3, 2)})
    victim = busy_dask_worker(ctx)
    time.sleep(2.0)  # well inside its piece
    killed = ctx.top.procs.kill_tree(victim)
    done = rest.wait_for(api, run["id"], timeout_s=600)
    summary = summary_fields(api, run["id"])
    ran = task_stream(ctx, since)
    start_dask_worker(ctx.top, victim)  # as the container would be restarted
    wait_until(lambda: len(dask_workers(ctx.top)) == len(DASK_WORKERS), 60, "the Dask worker back")
    survivor = next(n for n in DASK_WORKERS if n != victim)
    passed = (
        rest.state_type(done) == "COMPLETED"
        and summary.get("personas_built") == str(ROOMS)
        and summary.get("models_published") == str(ROOMS)
        and summary.get("failed") == "[]"
        and survivor in ran.get("refresh_persona", set())
    )
    detail = (
        f"killed {victim} ({killed} processes) during refresh_persona; pass {rest.state_type(done)} in "
        f"{rest.run_seconds(done) or 0:.0f}s: {summary.get('personas_built')}/{ROOMS} personas built, "
        f"{summary.get('models_published')} published, failed {summary.get('failed')}; {pieces_on_dask(ran)}"
    )
    return Result(passed, detail + _why(api, {"recycling": done}), {"pass_s": rest.run_seconds(done)})


def _task_done(api: rest.PrefectApi, run_id: str, name_prefix: str) -> bool:
    body = {"task_runs": {"flow_run_id": {"any_": [run_id]}, "name": {"like_": name_prefix}}}
    return any(
        rest.state_type(t) == "COMPLETED" for t in api.call("POST", "/task_runs/filter", body, patience_s=5)
    )


def lake_locks(ctx: Context) -> list[dict[str, Any]]:
    """The locks held in the lake (`rememberme locks --json`)."""
    _, found = cli(ctx, "locks")
    locks: list[dict[str, Any]] = found["locks"]
    return locks


def prefect_worker_killed(ctx: Context) -> Result:
    """SIGKILL the CPU worker and its flow-run process mid-restore (a lost machine); retry the run.

    The zombie automation marks the run Crashed once its heartbeats stop; the run is retried (the
    UI's Retry) on the restarted worker and completes; no lake lock or concurrency slot stays held.
    """
    api = ctx.top.api
    key = upload_export(ctx.top.lake(), "rehearsal-kill")
    run = rest.create_run(api, RESTORE, restore_params("rehearsal-kill", key))
    rest.wait_for(api, run["id"], {"RUNNING"}, timeout_s=120)
    wait_until(lambda: _task_done(api, run["id"], "index-messages"), 300, "the messages indexed", every_s=1)
    killed = ctx.top.procs.kill_tree("cpu-worker")
    t_kill = time.monotonic()
    start_worker(ctx.top, "rememberme-cpu")  # the container comes back
    crashed = rest.wait_for(api, run["id"], {"CRASHED"}, timeout_s=240)
    crash_after = time.monotonic() - t_kill
    note = ctx.receiver.wait_for(
        lambda n: run["name"] in n.subject and "Crashed" in n.subject, 60, "of the crash"
    )
    rest.retry(api, run["id"])
    t_retry = time.monotonic()
    done = rest.wait_for(api, run["id"], {"COMPLETED"}, timeout_s=600)
    rerun_s = time.monotonic() - t_retry
    locks = lake_locks(ctx)
    slots = _deployment_slots(api, RESTORE)
    passed = (
        rest.state_type(crashed) == "CRASHED"
        and rest.state_type(done) == "COMPLETED"
        and on_worker(done)
        and not locks
        and slots == 0
    )
    detail = (
        f"killed cpu-worker ({killed} processes) while it trained; Crashed after "
        f"{crash_after:.0f}s ({rest.state_message(crashed)}), notified '{note.subject}'; retried: "
        f"{rest.state_type(done)} {rerun_s:.0f}s later; lake locks held {len(locks)}, "
        f"concurrency slots {slots}"
    )
    numbers = {"crash_detected_s": round(crash_after, 1), "rerun_s": round(rerun_s, 1)}
    return Result(passed, detail + _why(api, {"restore": done}), numbers)


def _deployment_slots(api: rest.PrefectApi, name: str) -> int:
    limit = rest.deployment(api, name).get("global_concurrency_limit") or {}
    return int(limit.get("active_slots") or 0)


def postgres_stopped(ctx: Context) -> Result:
    """Stop PostgreSQL for 30 s while a restore runs; it goes on (or fails in one line); the next succeeds."""
    api, top = ctx.top.api, ctx.top
    key = upload_export(top.lake(), "rehearsal-pg")
    run = rest.create_run(api, RESTORE, restore_params("rehearsal-pg", key, train=False))
    rest.wait_for(api, run["id"], {"RUNNING"}, timeout_s=120)
    time.sleep(3.0)
    stop_database(top)
    time.sleep(PG_OUTAGE_S)
    start_postgres(top)
    during = rest.wait_for(api, run["id"], timeout_s=600)
    message = rest.state_message(during)
    after = rest.create_run(api, FORGET, {"owner_id": "rehearsal-pg"})
    nxt = rest.wait_for(api, after["id"], timeout_s=300)
    went_on = rest.state_type(during) == "COMPLETED"
    # Failed with its cause, not Crashed: its process lived, a crash would be the zombie automation's
    # mistake (heartbeats lost with the database) and its message would name the wrong cause.
    one_line = rest.state_type(during) == "FAILED" and bool(message) and "Traceback" not in message
    passed = (went_on or one_line) and rest.state_type(nxt) == "COMPLETED"
    outcome = "went on: Completed" if went_on else f"{rest.state_type(during)}: {message}"
    detail = (
        f"database down {PG_OUTAGE_S:.0f}s mid-restore; the run {outcome} "
        f"({rest.run_seconds(during) or 0:.0f}s); next run (forget) {rest.state_type(nxt)}"
    )
    return Result(passed, detail + _why(api, {"next": nxt}), {"run_s": rest.run_seconds(during)})


def failed_run_notified(ctx: Context) -> Result:
    """A restore of an upload that is not there fails with its one-line cause; the webhook hears of it."""
    api = ctx.top.api
    missing = "landing/uploads/rehearsal-bad/0000/KakaoTalk_missing.txt"
    run = rest.create_run(api, RESTORE, restore_params("rehearsal-bad", missing))
    done = rest.wait_for(api, run["id"], timeout_s=300)
    note = ctx.receiver.wait_for(
        lambda n: run["name"] in n.subject and "Failed" in n.subject, 60, "of the failure"
    )
    latency = note.at - datetime.fromisoformat(str(done["end_time"])).timestamp()
    passed = rest.state_type(done) == "FAILED" and "\n" not in rest.state_message(done)
    detail = f"run {rest.state_type(done)}: {rest.state_message(done)}; notified {latency:.1f}s later: "
    detail += f"{note.subject!r} / {note.body[:120]!r}"
    return Result(passed, detail, {"notified_after_s": round(latency, 1)})


def corrupt_dataset_manifest(lake_url: str, owner_id: str) -> str:
    """Overwrite the newest dataset manifest of `owner_id` with broken JSON (a damaged object); its key."""
    storage = open_storage(lake_url)
    manifests = [k for k in storage.list(f"datasets/{owner_id}/") if k.endswith("/manifest.json")]
    if not manifests:
        raise RehearsalError(f"no dataset of {owner_id} to damage")
    newest = max(manifests, key=lambda k: int(k.rsplit("/v", 1)[1].split("/")[0]))
    with storage.open_write(newest) as handle:
        handle.write(b'{"broken')
    return newest


def parked_piece_notified(ctx: Context) -> Result:
    """A persona whose dataset manifest is damaged fails three nightly passes in a row: parked, notified."""
    api, lake = ctx.top.api, ctx.top.lake()
    owner = "family-00000"
    key = corrupt_dataset_manifest(lake, owner)
    write_days(lake, ROOMS, 5, 1, only_room=0)  # new data for that persona: the next pass tries it
    passes = []
    for _ in range(3):  # three passes of the same night (the schedule's, triggered at once)
        run = rest.create_run(api, RECYCLING, {"as_of": as_of(5, 1)})
        passes.append(rest.wait_for(api, run["id"], timeout_s=300))
    last = summary_fields(api, passes[-1]["id"])
    note = ctx.receiver.wait_for(lambda n: "parked" in n.subject, 60, "of the parked piece")
    passed = all(rest.state_type(p) == "COMPLETED" for p in passes) and owner in last.get("parked", "")
    detail = (
        f"damaged {key}; passes {'/'.join(rest.state_type(p) for p in passes)}, parked {last.get('parked')}; "
        f"notified: {note.subject!r}"
    )
    return Result(passed, detail, {"passes_s": [rest.run_seconds(p) for p in passes]})
