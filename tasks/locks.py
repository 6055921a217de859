"""At most one instant restore per (owner, persona) at a time; others queue for the slot.

A Prefect global concurrency limit of 1 per persona, created on first use. The slot is leased
(renewed while the run lives), so a crashed run frees it when its lease expires.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency

from tasks.artifacts import artifact_key


def lock_name(owner_id: str, persona: str) -> str:
    """The concurrency-limit name of one persona."""
    return "restore-" + artifact_key(owner_id, persona)


def _ensure_limit(name: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(name, 1)
        except httpx.HTTPStatusError as exc:  # two first runs racing to create it
            if exc.response.status_code != 409:
                raise


@contextlib.contextmanager
def persona_lock(owner_id: str, persona: str, timeout_s: float | None = None) -> Iterator[str]:
    """Hold the persona's single slot for the block (waits while another run holds it)."""
    name = lock_name(owner_id, persona)
    _ensure_limit(name)
    with concurrency(name, occupy=1, timeout_seconds=timeout_s, strict=True):
        yield name
