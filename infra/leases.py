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
import contextvars
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from infra.errors import TerminalError, TransientError
from infra.storage import Storage


class LeaseTimeoutError(TransientError, TimeoutError):
    """Another holder kept the lease for longer than the caller was willing to wait."""


class LeaseLostError(TerminalError):
    """The lease ran out or was taken over: its holder must not commit anything more."""


@dataclass
class Holding:
    """One lease this process holds: what its commit points check (`check_fences`)."""

    storage: Storage
    key: str
    holder: str
    #: The fencing token: the time (ns) this holder took the lease; a later holder has a larger one.
    generation: int
    ttl_s: float
    run: str | None = None
    since: float = field(default_factory=time.time)
    #: Set once another holder was seen holding the lease: for good.
    lost: threading.Event = field(default_factory=threading.Event)
    #: Monotonic time until which the last successful renewal keeps the lease.
    valid_until: float = 0.0

    def renew(self, data: bytes | None, token: str) -> bool:
        """Extend the lease read as (`data`, `token`) if it is still ours; False (and lost) if not."""
        asked = time.monotonic()
        body = _body(self.holder, self.ttl_s, self.since, self.run, self.generation)
        if _holder(data) == self.holder:
            if self.storage.replace_if(self.key, body, token):
                self.valid_until = asked + self.ttl_s
                return True
            if _holder(self.storage.read_versioned(self.key)[0]) == self.holder:
                return True  # this holder's other thread renewed it in between
        self.lost.set()  # another run holds it now
        return False

    def check(self) -> None:
        """Raise LeaseLostError unless this holder provably still holds its lease.

        Within the lease period since the last renewal it does, unless another holder was seen.
        Past it (renewals failed: a stall, a lost network) only a renewal now proves it: the
        lease object still names this holder and is extended by compare-and-swap. A holder that
        cannot reach the lake to prove it stops.
        """
        if not self.lost.is_set():
            try:
                data, token = self.storage.read_versioned(self.key)
                if _holder(data) != self.holder:
                    self.lost.set()
                elif time.monotonic() > self.valid_until:
                    self.renew(data, token)  # sets `lost` when it is not ours any more
                proven = not self.lost.is_set()
            except Exception:  # the lake is out of reach: only a lease still running counts
                proven = time.monotonic() <= self.valid_until
        else:
            proven = False
        if not proven:
            name = self.key.removeprefix("locks/").removesuffix(".json")
            raise LeaseLostError(
                f"the lock {name} was lost (not renewed within {self.ttl_s:.0f} s: this run stalled or "
                "lost the lake) and may be held by another run; this run stops without committing "
                "more. Run the command again to finish."
            )


#: The leases held in the current context (a flow, a task and the threads that inherit it).
_held: contextvars.ContextVar[tuple[Holding, ...]] = contextvars.ContextVar("rememberme_leases", default=())


def check_fences() -> None:
    """At a commit point: refuse to go on if any lease this context holds was lost or taken over.

    Outside any lease (a CLI step that takes none) it does nothing.
    """
    for holding in _held.get():
        holding.check()


def fence_tokens() -> dict[str, int]:
    """Lock name -> generation of every lease this context holds (recorded with what it commits)."""
    return {h.key.removeprefix("locks/").removesuffix(".json"): h.generation for h in _held.get()}


#: How often a waiter repeats whom it waits for.
WAIT_REPORT_S = 30.0


def _body(
    holder: str, ttl_s: float, since: float | None = None, run: str | None = None, generation: int = 0
) -> bytes:
    now = time.time()
    return json.dumps(
        {
            "holder": holder,
            "generation": generation,
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


def _generation(data: bytes | None) -> int:
    try:
        return int(json.loads(data or b"{}").get("generation") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0


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
        generation = time.time_ns()
        taken_at = time.monotonic()
        if storage.create(key, _body(holder, ttl_s, run=run, generation=generation)):
            break
        data, token = storage.read_versioned(key)
        generation = max(generation, _generation(data) + 1)
        if (
            data is not None
            and _expired(data)
            and storage.replace_if(key, _body(holder, ttl_s, run=run, generation=generation), token)
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
    holding = Holding(storage, key, holder, generation, ttl_s, run, since, valid_until=taken_at + ttl_s)

    def renew() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                if not holding.renew(*storage.read_versioned(key)):
                    return  # taken over after we failed to renew in time: the commit points stop us
            except Exception:  # a storage hiccup: try again (the commit points stop a lapsed holder)
                continue

    renewer = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
    renewer.start()
    reset = _held.set((*_held.get(), holding))
    try:
        yield key
    finally:
        _held.reset(reset)
        stop.set()
        renewer.join(timeout=5)
        try:
            data, token = storage.read_versioned(key)
            if _holder(data) == holder:
                storage.delete_if(key, token)  # never a lease another run took over meanwhile
        except Exception:  # the lake is out of reach: the lease runs out by itself within ttl_s
            pass


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
    data, token = storage.read_versioned(key)
    return _holder(data) == marker and storage.delete_if(key, token)
