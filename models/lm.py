"""One type for what trains, evaluates, exports and is stored: our GPT or a wrapped Hugging Face LM."""

from __future__ import annotations

from typing import Any

from models.gpt import GPT, GPTConfig
from models.hf import ARCH, HFCausalLM, HFConfig

LanguageModel = GPT | HFCausalLM


def model_from_config(data: dict[str, Any]) -> LanguageModel:
    """An untrained model of the shape a checkpoint's `config.json` describes."""
    if data.get("arch") == ARCH:
        return HFCausalLM.from_config(HFConfig.from_dict(data))
    return GPT(GPTConfig(**{k: v for k, v in data.items() if k != "arch"}))
