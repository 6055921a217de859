"""One writer per persona at a time: restore, recycling's refresh and forget queue for its slot.

A Prefect global concurrency limit of 1 per persona, created on first use, named by the
collision-free persona key (no name in clear: `엄마` and `엄마❤️` are two slots). The slot is
leased (renewed while the run lives), so a crashed run frees it when its lease expires.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency

from schemas.names import slug
from tasks.clean import persona_key


def lock_name(owner_id: str, persona_id: str) -> str:
    """The concurrency-limit name of one persona (by persona id, the `slug` of its name)."""
    return f"persona-{owner_id}-{persona_key(owner_id, persona_id)}"


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
    name = lock_name(owner_id, slug(persona))
    _ensure_limit(name)
    with concurrency(name, occupy=1, timeout_seconds=timeout_s, strict=True):
        yield name


@contextlib.contextmanager
def persona_locks(
    owner_id: str, persona_ids: list[str], timeout_s: float | None = None
) -> Iterator[list[str]]:
    """Hold several personas' slots (by id), always taken in one order so two holders never deadlock."""
    with contextlib.ExitStack() as stack:
        names = []
        for persona_id in sorted(set(persona_ids)):
            name = lock_name(owner_id, persona_id)
            _ensure_limit(name)
            stack.enter_context(concurrency(name, occupy=1, timeout_seconds=timeout_s, strict=True))
            names.append(name)
        yield names
