"""train_base: pretrain the shared base on the lake's corpus (or import a local pretrained LM)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from infra.settings import Settings
from tasks.artifacts import report_training
from tasks.steps import import_base_model, quiet_expected_errors, train_base_model


@flow(name="train-base", log_prints=True)
def train_base(
    lake_url: str | None = None, steps: int | None = None, from_hf: str | None = None
) -> dict[str, Any]:
    """Publish `models/platform/base/base/v{n}` (the newest base is what personas fine-tune from).

    Pretrained here on the lake's conversations, or, with `from_hf`, imported from a local
    Hugging Face causal-LM directory.
    """
    quiet_expected_errors()
    lake = lake_url or Settings().lake_url
    manifest = import_base_model(lake, from_hf) if from_hf else train_base_model(lake, steps)
    report_training(manifest)
    return {"version": manifest["version"], "metrics": manifest["metrics"], "corpus": manifest["corpus"]}
