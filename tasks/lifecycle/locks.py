"""One writer per persona at a time: restore, recycling's refresh, training and forget queue for it.

The lock is a lease in the lake itself (infra/leases.py), keyed by the collision-free persona key
(no name in clear: `엄마` and `엄마❤️` are two locks). It excludes writers on other hosts and writers
that never talk to the Prefect API, and it dies with its holder: a killed run's lease runs out
after `REMEMBERME_LOCK_LEASE_S` (60 s) and the next run takes it over. Prefect's global concurrency
slots are not used for this: their leases live in the memory of the API server that granted them,
so a run killed under a temporary API server held its persona's slot forever (every later restore,
recycle or forget of that persona waited without end). A waiting run says in its log (the Prefect
UI) whom it waits for and since when; `rememberme locks` lists the locks and frees an expired one.
Several personas are always taken in one order, so two holders never deadlock.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from infra.leases import lease
from infra.settings import get_settings
from infra.storage import Storage
from schemas.names import slug
from tasks.datasets.clean import persona_key


def lock_name(owner_id: str, persona_id: str) -> str:
    """The lock name of one persona (by persona id, the `slug` of its name)."""
    return f"persona-{owner_id}-{persona_key(owner_id, persona_id)}"


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        from prefect.exceptions import MissingContextError
        from prefect.logging import get_run_logger

        try:
            return get_run_logger()
        except MissingContextError:
            pass
    except ImportError:  # plain functions without Prefect installed
        pass
    return logging.getLogger("rememberme.locks")


def _run_id() -> str | None:
    try:
        from prefect.runtime import flow_run

        return str(flow_run.id) if flow_run.id else None
    except Exception:  # outside a flow run, or no Prefect: the lease names no run
        return None


def report_wait(held: dict[str, Any]) -> None:
    """Log whom a persona lock waits for and since when."""
    since = held.get("since")
    when = datetime.fromtimestamp(float(since), UTC).isoformat(timespec="seconds") if since else "unknown"
    run = f", flow run {held['run']}" if held.get("run") else ""
    _logger().info(
        "waiting for lock %s held by pid %s on %s%s since %s (%.0f s so far; a dead holder's lease ends "
        "within %.0f s)",
        held.get("name"), held.get("pid"), held.get("host"), run, when, held.get("waited_s", 0.0),
        get_settings().lock_lease_s,
    )  # fmt: skip


@contextlib.contextmanager
def persona_locks(
    owner_id: str, persona_ids: list[str], storage: Storage, timeout_s: float | None = None
) -> Iterator[list[str]]:
    """Hold several personas' locks (by id) for the block, always in the same order."""
    ttl = get_settings().lock_lease_s
    run = _run_id()
    with contextlib.ExitStack() as stack:
        names = [lock_name(owner_id, p) for p in sorted(set(persona_ids))]
        for name in names:
            stack.enter_context(
                lease(storage, name, ttl_s=ttl, timeout_s=timeout_s, on_wait=report_wait, run=run)
            )
        yield names


@contextlib.contextmanager
def recycling_lock(storage: Storage, timeout_s: float | None = None) -> Iterator[str]:
    """One recycling pass at a time per lake, whoever started it (a schedule, the CLI, another host).

    The deployment's concurrency limit only sees runs of its own API server; the watermark and the
    failed-piece ledger are read at planning and written at the end, so two passes would each undo
    the other's progress. Its fencing token guards that last write (a pass whose lease was taken over
    does not move the watermark).
    """
    ttl = get_settings().lock_lease_s
    with lease(
        storage, "recycling", ttl_s=ttl, timeout_s=timeout_s, on_wait=report_wait, run=_run_id()
    ) as key:
        yield key


@contextlib.contextmanager
def persona_lock(
    owner_id: str, persona: str, storage: Storage, timeout_s: float | None = None
) -> Iterator[str]:
    """Hold the persona's single lock (by display name) for the block."""
    with persona_locks(owner_id, [slug(persona)], storage, timeout_s) as names:
        yield names[0]
