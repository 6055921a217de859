"""A lock that lives in the lake: one holder per key across processes and hosts, crash-safe.

Taking it is an exclusive create of `locks/{name}.json` (a hard link locally, the generation
precondition `if_generation_match=0` on GCS). The holder renews its lease on a thread; a holder
that died stops renewing, and once its lease has expired the next taker replaces the object by
compare-and-swap (only one of several takers wins). Release deletes the object if it is still ours.
Used where plain functions write versioned things outside a Prefect flow (the CLI's `dataset
build`) and by every persona lock, so two hosts sharing a GCS lake exclude each other too.

A lease never outlives its holder by more than `ttl_s`: nothing but the holder's own renewals
keeps it (unlike Prefect's concurrency slots, whose leases live in the memory of the API server
that granted them and are not repossessed by a temporary server: a killed run held its slot for
good). A waiter says whom it waits for and since when (`on_wait`); `held` lists every lease.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from infra.errors import TransientError
from infra.storage import Storage


class LeaseTimeoutError(TransientError, TimeoutError):
    """Another holder kept the lease for longer than the caller was willing to wait."""


#: How often a waiter repeats whom it waits for.
WAIT_REPORT_S = 30.0


def _body(holder: str, ttl_s: float, since: float | None = None, run: str | None = None) -> bytes:
    now = time.time()
    return json.dumps(
        {
            "holder": holder,
            "expires": now + ttl_s,
            "since": now if since is None else since,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "run": run,
        }
    ).encode()


def describe(data: bytes | None) -> dict[str, Any]:
    """A lease object as the operator reads it: holder, host, pid, run, since, expires, expired."""
    try:
        held: dict[str, Any] = json.loads(data or b"{}")
    except ValueError:
        held = {}
    return {
        "holder": held.get("holder"),
        "host": held.get("host"),
        "pid": held.get("pid"),
        "run": held.get("run"),
        "since": held.get("since"),
        "expires": held.get("expires"),
        "expired": data is None or _expired(data),
    }


def _expired(data: bytes) -> bool:
    try:
        return float(json.loads(data)["expires"]) < time.time()
    except (ValueError, KeyError, TypeError):
        return True  # unreadable: a torn write of a dead holder


def _holder(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        held: dict[str, Any] = json.loads(data)
    except ValueError:
        return None
    return str(held.get("holder"))


@contextlib.contextmanager
def lease(
    storage: Storage,
    name: str,
    ttl_s: float = 60.0,
    timeout_s: float | None = None,
    poll_s: float = 0.2,
    on_wait: Callable[[dict[str, Any]], None] | None = None,
    run: str | None = None,
) -> Iterator[str]:
    """Hold the lake lock `name` for the block; waits (up to `timeout_s`) while another holds it.

    `on_wait` hears, when the wait starts and every `WAIT_REPORT_S`, who holds it (`describe`);
    `run` names this holder (a flow run id) for the operator.
    """
    key = f"locks/{name}.json"
    holder = uuid.uuid4().hex
    started = time.monotonic()
    deadline = None if timeout_s is None else started + timeout_s
    reported = -WAIT_REPORT_S
    while True:
        if storage.create(key, _body(holder, ttl_s, run=run)):
            break
        data, token = storage.read_versioned(key)
        if (
            data is not None
            and _expired(data)
            and storage.replace_if(key, _body(holder, ttl_s, run=run), token)
        ):
            break  # the previous holder died: its lease ran out
        if deadline is not None and time.monotonic() > deadline:
            who = describe(data)
            raise LeaseTimeoutError(
                f"{name} is held by another run (pid {who['pid']} on {who['host']}); "
                "try again when it has finished"
            )
        if on_wait is not None and time.monotonic() - reported >= WAIT_REPORT_S:
            reported = time.monotonic()
            on_wait({"name": name, **describe(data), "waited_s": round(reported - started, 1)})
        time.sleep(poll_s)

    stop = threading.Event()
    since = time.time()

    def renew() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                data, token = storage.read_versioned(key)
                if _holder(data) != holder or not storage.replace_if(
                    key, _body(holder, ttl_s, since, run), token
                ):
                    return  # taken over after we failed to renew in time: nothing left to renew
            except Exception:  # a storage hiccup: try again before the lease runs out
                continue

    renewer = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
    renewer.start()
    try:
        yield key
    finally:
        stop.set()
        renewer.join(timeout=5)
        data, _ = storage.read_versioned(key)
        if _holder(data) == holder:
            storage.delete(key)


def held(storage: Storage) -> list[dict[str, Any]]:
    """Every lease in the lake (`locks/`), live or expired."""
    out = []
    for key in storage.list("locks/"):
        if not key.endswith(".json"):
            continue
        data, _ = storage.read_versioned(key)
        if data is not None:
            out.append({"name": key[len("locks/") : -len(".json")], **describe(data)})
    return out


def free_expired(storage: Storage, name: str) -> bool:
    """Remove a lease whose holder is gone (False: it is live, or not there); a live one is never freed."""
    key = f"locks/{name}.json"
    data, token = storage.read_versioned(key)
    if data is None or not _expired(data):
        return False
    marker = uuid.uuid4().hex
    # Claimed by compare-and-swap first, so a taker that just replaced it keeps its lease.
    if not storage.replace_if(key, json.dumps({"holder": marker, "expires": 0}).encode(), token):
        return False
    data, _ = storage.read_versioned(key)
    return _holder(data) == marker and storage.delete(key)
