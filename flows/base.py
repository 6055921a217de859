"""train_base: pretrain the shared base model on the lake's corpus; personas fine-tune from it."""

from __future__ import annotations

from typing import Any

from prefect import flow

from infra.settings import Settings
from tasks.artifacts import report_training
from tasks.steps import quiet_expected_errors, train_base_model


@flow(name="train-base", log_prints=True)
def train_base(lake_url: str | None = None, steps: int | None = None) -> dict[str, Any]:
    """Pretrain and publish `models/platform/base/base/v{n}` (the newest base is what personas use)."""
    quiet_expected_errors()
    manifest = train_base_model(lake_url or Settings().lake_url, steps)
    report_training(manifest)
    return {"version": manifest["version"], "metrics": manifest["metrics"], "corpus": manifest["corpus"]}
