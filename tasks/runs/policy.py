"""How every Prefect task of the pipeline retries, and where its inputs come from.

Retries only on transient failures (network, 429, 5xx, errors that say so at their source) with
exponential back-off; bad input and failed gates fail at once with their one-line cause. Every
wrapped step is idempotent: ids and object names derive from content, manifests and watermarks
are written last.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task, exponential_backoff

from infra.storage import Storage
from infra.transient import is_transient


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect retry condition: only failures that may pass on a later try."""
    try:
        state.result()
    except Exception as exc:  # the task's own exception, re-raised by result()
        return is_transient(exc)
    return False


RETRY: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
}


@contextlib.contextmanager
def local_copy(source: str, storage: Storage) -> Iterator[Path]:
    """A local path for `source`: a file on this machine, or a key in the lake (downloaded)."""
    path = Path(source)
    if path.exists() or not storage.exists(source):
        yield path  # a missing path fails in ingest with the usual one-line error
        return
    with tempfile.TemporaryDirectory(prefix="rememberme-src-") as tmp:
        local = Path(tmp) / Path(source).name
        local.write_bytes(storage.read_bytes(source))
        yield local
