"""Training options from the settings: one place for every flow (restore, recycling, forget)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.settings import Settings

if TYPE_CHECKING:  # torch-heavy: imported only when a model trains
    from tasks.training.train import ModelOptions


def persona_model_options(max_steps: int | None = None) -> ModelOptions:
    """`ModelOptions` from the settings: steps, device, LoRA rank (one place for every flow)."""
    from models.train import TrainConfig
    from tasks.training.conversation_eval import GateTolerances
    from tasks.training.train import ModelOptions

    settings = Settings()
    config = TrainConfig(max_steps=max_steps or settings.train_max_steps, device=settings.train_device)
    gate = GateTolerances(
        settings.gate_selection_tolerance, settings.gate_contrastive_tolerance, settings.gate_bland_tolerance
    )
    return ModelOptions(train=config, lora_rank=settings.train_lora_rank, gate=gate)
