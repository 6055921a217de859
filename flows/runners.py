"""Where recycling's mapped tasks run: a Dask cluster when configured, local threads otherwise."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from infra.settings import Settings


def recycling_task_runner(settings: Settings | None = None) -> TaskRunner[Any]:
    """Dask when a scheduler address is configured, local threads otherwise."""
    settings = settings or Settings()
    if settings.dask_address:
        from prefect_dask.task_runners import DaskTaskRunner

        return DaskTaskRunner(address=settings.dask_address)
    return ThreadPoolTaskRunner(max_workers=4)
