"""One writer per persona at a time: restore, recycling's refresh, training and forget queue for it.

Two layers, both keyed by the collision-free persona key (no name in clear: `엄마` and `엄마❤️`
are two slots):
- a Prefect global concurrency limit of 1 per persona, created on first use, where a flow runs:
  the wait is visible in the UI, and the slot is leased (a crashed run frees it on expiry);
- a lease in the lake itself (infra/leases.py), taken inside the Prefect slot and alone by plain
  functions (the CLI's `dataset build`): it also excludes writers on other hosts and writers that
  never talk to the Prefect API.
Several personas are always taken in one order, so two holders never deadlock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from infra.leases import lease
from infra.storage import Storage
from schemas.names import slug
from tasks.datasets.clean import persona_key


def lock_name(owner_id: str, persona_id: str) -> str:
    """The lock name of one persona (by persona id, the `slug` of its name)."""
    return f"persona-{owner_id}-{persona_key(owner_id, persona_id)}"


def _ensure_limit(name: str) -> None:
    import httpx
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(name, 1)
        except httpx.HTTPStatusError as exc:  # two first runs racing to create it
            if exc.response.status_code != 409:
                raise


@contextlib.contextmanager
def persona_lease(
    storage: Storage, owner_id: str, persona_ids: list[str], timeout_s: float | None = None
) -> Iterator[list[str]]:
    """Hold the lake leases of personas (by id) for the block; no Prefect API needed."""
    with contextlib.ExitStack() as stack:
        names = [lock_name(owner_id, p) for p in sorted(set(persona_ids))]
        for name in names:
            stack.enter_context(lease(storage, name, timeout_s=timeout_s))
        yield names


@contextlib.contextmanager
def persona_locks(
    owner_id: str, persona_ids: list[str], storage: Storage | None = None, timeout_s: float | None = None
) -> Iterator[list[str]]:
    """Hold several personas' Prefect slots (by id), then their lake leases when `storage` is given."""
    from prefect.concurrency.sync import concurrency

    with contextlib.ExitStack() as stack:
        names = []
        for persona_id in sorted(set(persona_ids)):
            name = lock_name(owner_id, persona_id)
            _ensure_limit(name)
            stack.enter_context(concurrency(name, occupy=1, timeout_seconds=timeout_s, strict=True))
            names.append(name)
        if storage is not None:
            stack.enter_context(persona_lease(storage, owner_id, persona_ids, timeout_s))
        yield names


@contextlib.contextmanager
def persona_lock(
    owner_id: str, persona: str, storage: Storage | None = None, timeout_s: float | None = None
) -> Iterator[str]:
    """Hold the persona's single slot (by display name) for the block."""
    with persona_locks(owner_id, [slug(persona)], storage, timeout_s) as names:
        yield names[0]
