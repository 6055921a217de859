"""Prefect tasks of the dataset stage: thin wrappers over the plain functions beside them."""

from __future__ import annotations

from prefect import task

from infra.storage import open_storage
from tasks.datasets.build import DatasetOptions, DatasetResult, build_dataset


@task(name="build-dataset", persist_result=True)
def build_persona_dataset(
    lake_url: str, owner_id: str, persona: str, aliases: list[str], options: DatasetOptions | None = None
) -> DatasetResult:
    """Clean, gate and version one persona's training pairs."""
    return build_dataset(open_storage(lake_url), owner_id, persona, aliases, options)
