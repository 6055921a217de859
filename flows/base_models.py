"""The shared bases personas start from: text (`train-base`) and voice (`train-voice-base`).

Each is pretrained here on the lake's consented corpus, or imported from a local directory.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from infra.settings import Settings
from tasks.runs.artifacts import report_training
from tasks.runs.run_logs import readable_failure_logs
from tasks.training.prefect_tasks import import_base_model, train_base_model
from tasks.voice.prefect_tasks import import_voice_base_model, train_voice_base_model


@flow(name="train-base", log_prints=True)
def train_base(
    lake_url: str | None = None, steps: int | None = None, from_hf: str | None = None
) -> dict[str, Any]:
    """Publish `models/platform/base/base/v{n}` (the newest base is what personas fine-tune from).

    Pretrained here on the lake's conversations, or, with `from_hf`, imported from a local
    Hugging Face causal-LM directory.
    """
    readable_failure_logs()
    lake = lake_url or Settings().lake_url
    manifest = import_base_model(lake, from_hf) if from_hf else train_base_model(lake, steps)
    report_training(manifest)
    return {"version": manifest["version"], "metrics": manifest["metrics"], "corpus": manifest["corpus"]}


@flow(name="train-voice-base", log_prints=True)
def train_voice_base(
    lake_url: str | None = None, steps: int | None = None, from_dir: str | None = None
) -> dict[str, Any]:
    """Publish `models/platform/voice-base/base/v{n}` (users' voices adapt the newest).

    Pretrained here on every persona's newest transcribed voice dataset (multi-speaker), or, with
    `from_dir`, imported from a local folder holding `config.json` and the weights.
    """
    readable_failure_logs()
    lake = lake_url or Settings().lake_url
    manifest = import_voice_base_model(lake, from_dir) if from_dir else train_voice_base_model(lake, steps)
    report_training(manifest)
    return {"version": manifest["version"], "metrics": manifest["metrics"], "corpus": manifest["corpus"]}
