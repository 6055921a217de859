"""Prefect tasks of forget: thin wrappers over the plain functions beside them."""

from __future__ import annotations

from typing import Any

from prefect import task

from infra import services
from infra.faults import fault_point
from infra.search import connect
from infra.settings import Settings
from infra.storage import open_storage
from infra.text_features import default_embedder
from tasks.runs.policy import RETRY
from tasks.training.options import persona_model_options


@task(name="forget-subject", **RETRY)
def forget_subject(lake_url: str, owner_id: str, persona: str | None, aliases: list[str]) -> dict[str, Any]:
    """Remove a persona (or an owner) from the lake, search, datasets, models and bases; a receipt."""
    from tasks.lifecycle.forgetting import forget

    settings = Settings()
    client = connect(services.elasticsearch_url(settings))
    return forget(open_storage(lake_url), client, owner_id, persona, tuple(aliases), persona_model_options(),
                  default_embedder())  # fmt: skip


@task(name="forget-prefect-history", **RETRY)
def forget_prefect_history(owner_id: str, names: list[str], keep_flow_run: str | None) -> dict[str, Any]:
    """Remove what Prefect holds about the subject (runs, results, artifacts, logs, events); the debug log."""
    from uuid import UUID

    from tasks.lifecycle.prefect_history import Mentions, forget_history
    from tasks.runs.run_logs import purge_debug_logs

    fault_point("forget.history")
    keep = UUID(keep_flow_run) if keep_flow_run else None
    return {
        **forget_history(Mentions(owner_id, tuple(names)), keep).to_dict(),
        "debug_logs": purge_debug_logs(),
    }
