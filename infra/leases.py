"""A lock that lives in the lake: one holder per key across processes and hosts, crash-safe.

Taking it is an exclusive create of `locks/{name}.json` (a hard link locally, the generation
precondition `if_generation_match=0` on GCS). The holder renews its lease on a thread; a holder
that died stops renewing, and once its lease has expired the next taker replaces the object by
compare-and-swap (only one of several takers wins). Release deletes the object if it is still ours.
Used where plain functions write versioned things outside a Prefect flow (the CLI's `dataset
build`) and by every persona lock, so two hosts sharing a GCS lake exclude each other too.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from infra.errors import TransientError
from infra.storage import Storage


class LeaseTimeoutError(TransientError, TimeoutError):
    """Another holder kept the lease for longer than the caller was willing to wait."""


def _body(holder: str, ttl_s: float) -> bytes:
    return json.dumps(
        {"holder": holder, "expires": time.time() + ttl_s, "host": socket.gethostname(), "pid": os.getpid()}
    ).encode()


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
    storage: Storage, name: str, ttl_s: float = 60.0, timeout_s: float | None = None, poll_s: float = 0.2
) -> Iterator[str]:
    """Hold the lake lock `name` for the block; waits (up to `timeout_s`) while another holds it."""
    key = f"locks/{name}.json"
    holder = uuid.uuid4().hex
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        if storage.create(key, _body(holder, ttl_s)):
            break
        data, token = storage.read_versioned(key)
        if data is not None and _expired(data) and storage.replace_if(key, _body(holder, ttl_s), token):
            break  # the previous holder died: its lease ran out
        if deadline is not None and time.monotonic() > deadline:
            raise LeaseTimeoutError(f"{name} is held by another run; try again when it has finished")
        time.sleep(poll_s)

    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / 3):
            data, token = storage.read_versioned(key)
            if _holder(data) != holder or not storage.replace_if(key, _body(holder, ttl_s), token):
                return  # lost (should not happen while we renew in time): nothing to renew

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
