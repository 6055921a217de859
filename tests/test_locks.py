"""Persona locks die with their holder: SIGKILL the holder, the next run takes the lock within its lease.

Before, the lock was also a Prefect global concurrency slot whose lease lived in the memory of the
API server that granted it: a run killed under a temporary API server held the slot for good, and
every later restore, recycle or forget of that persona waited without end.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.leases import free_expired, held, lease
from infra.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
# A flow run that takes a persona's lock, says so, then holds it (or reports how long it waited).
CHILD = """
import sys, time
from infra.prefect_env import configure_prefect
from infra.settings import Settings
configure_prefect(Settings())
from prefect import flow
from infra.storage import open_storage
from tasks.lifecycle.locks import persona_lock

@flow(name="lock-holder")
def hold(lake: str, seconds: float) -> float:
    start = time.monotonic()
    with persona_lock("kill-owner", "엄마", open_storage(lake), timeout_s=120):
        waited = time.monotonic() - start
        print(f"HELD {waited:.2f}", flush=True)
        time.sleep(seconds)
    return waited

hold(sys.argv[1], float(sys.argv[2]))
"""


def _child(lake: str, seconds: float, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, lake, str(seconds)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def _wait_for(proc: subprocess.Popen[str], prefix: str, limit_s: float, seen: list[str]) -> str:
    deadline = time.monotonic() + limit_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if prefix in line:
            return line
    raise AssertionError(f"never saw {prefix!r}:\n{''.join(seen)[-3000:]}")


@pytest.mark.integration
@pytest.mark.parametrize("server", ["temporary", "long-running"])
def test_a_killed_holder_frees_its_persona_within_one_lease(server: str, tmp_path: Path, request) -> None:
    lease_s = 8.0
    env = {
        **os.environ,
        "REMEMBERME_LOCK_LEASE_S": str(lease_s),
        "REMEMBERME_STATE_DIR": str(tmp_path / "state"),
    }
    env.pop("PREFECT_API_URL", None)
    if server == "long-running":
        request.getfixturevalue("prefect_api")
        from prefect.settings import PREFECT_API_URL

        env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    lake = f"file://{tmp_path}/lake"
    holder = _child(lake, 600, env)
    taker = None
    try:
        _wait_for(holder, "HELD ", 180, [])
        taker = _child(lake, 0, env)
        seen: list[str] = []
        waiting = _wait_for(taker, "waiting for lock persona-kill-owner-", 180, seen)  # whom, since when
        assert f"pid {holder.pid} on " in waiting and " since " in waiting
        killed = time.monotonic()
        os.killpg(holder.pid, signal.SIGKILL)  # the run and its temporary API server, mid-hold
        _wait_for(taker, "HELD ", 60, seen)
        after = time.monotonic() - killed
        assert after <= lease_s + 4, f"a dead holder kept the lock {after:.1f} s (lease {lease_s} s)"
        assert taker.wait(120) == 0
    finally:
        for proc in (holder, taker):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert held(open_storage(lake)) == []  # released when the second run finished


def test_a_waiter_says_whom_it_waits_for_and_the_operator_sees_and_frees_dead_locks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    reports: list[dict[str, object]] = []
    with lease(storage, "persona-o-p", ttl_s=30, run="run-1"):
        [live] = held(storage)
        assert live["name"] == "persona-o-p" and live["run"] == "run-1" and live["pid"] == os.getpid()
        assert live["expired"] is False and not free_expired(storage, "persona-o-p")  # a live one is kept
        with (
            pytest.raises(TimeoutError),
            lease(storage, "persona-o-p", timeout_s=0.5, on_wait=reports.append),
        ):
            pass
    assert reports and reports[0]["pid"] == os.getpid() and reports[0]["since"]
    # A holder that died leaves its lease behind until it expires: listed as expired, freed on request.
    storage.create(
        "locks/persona-o-q.json", json.dumps({"holder": "dead", "expires": time.time() - 1}).encode()
    )
    assert [lock["expired"] for lock in held(storage)] == [True]
    assert free_expired(storage, "persona-o-q") and held(storage) == []
    assert not free_expired(storage, "persona-o-q")  # nothing left to free

    from tasks.lifecycle.locks import report_wait

    with caplog.at_level(logging.INFO, logger="rememberme.locks"):
        report_wait({"name": "persona-o-p", "pid": 7, "host": "h", "since": time.time(), "waited_s": 3.0})
    assert "waiting for lock persona-o-p held by pid 7 on h since" in caplog.text


def test_a_renewal_that_fails_once_keeps_the_lease(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    calls = {"n": 0}
    original = storage.read_versioned

    def flaky(key: str) -> tuple[bytes | None, str]:
        calls["n"] += 1
        if calls["n"] == 3:  # the first renewal's read
            raise OSError("the lake blinked")
        return original(key)

    storage.read_versioned = flaky  # type: ignore[method-assign]
    with lease(storage, "persona-o-r", ttl_s=0.6):
        time.sleep(1.5)  # several renewal periods: the one that raised did not end renewing
        assert held(storage)[0]["expired"] is False
    assert calls["n"] > 3
