"""A Hugging Face causal language model from a local directory, behind our model interface.

The platform base can be a pretrained causal LM (GPT-2, Llama, Qwen, ... any architecture
`transformers` loads with `AutoModelForCausalLM`) instead of our own small GPT. Nothing downloads:
the directory must hold `config.json`, the weights and a fast tokenizer's `tokenizer.json`.

Wrapped, it looks like `models.gpt.GPT` to the rest of the code: `forward(ids) -> logits`, a
`config` with `vocab_size`, `block_size` and `to_dict()`, so the training loop, evaluation, LoRA,
ONNX export and the registry need no second path. Our turn markers (`<persona>`, `<other>`, ...)
are added to the tokenizer as special tokens and the embeddings grow to match. GPT-2's `Conv1D`
projections are turned into the equivalent `nn.Linear` so LoRA can adapt them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Tokenizer
from torch import nn

from models.tokenizer import SPECIALS

ARCH = "hf"


class HFLoadError(ValueError):
    """A local model directory that cannot be used as a base (missing file, unknown architecture)."""


@dataclass(frozen=True)
class HFConfig:
    """What rebuilds the wrapped model without the original directory (stored in checkpoints)."""

    vocab_size: int
    block_size: int
    hf_config: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; `arch` tells loaders which class to build."""
        return {
            "arch": ARCH,
            "vocab_size": self.vocab_size,
            "block_size": self.block_size,
            "hf_config": self.hf_config,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HFConfig:
        """Inverse of `to_dict`."""
        return cls(data["vocab_size"], data["block_size"], data["hf_config"], data.get("source", ""))


def _linear_from_conv1d(module: Any) -> nn.Linear:
    """GPT-2's Conv1D computes `x @ W + b` with W (in, out): the same as Linear with W transposed."""
    weight: torch.Tensor = module.weight
    linear = nn.Linear(weight.shape[0], weight.shape[1])
    with torch.no_grad():
        linear.weight.copy_(weight.T)
        linear.bias.copy_(module.bias)
    return linear


def _conv1d_to_linear(model: nn.Module) -> None:
    for name, module in list(model.named_modules()):
        if type(module).__name__ == "Conv1D":
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            parent.register_module(child, _linear_from_conv1d(module))


class HFCausalLM(nn.Module):
    """Token ids (batch, time) -> logits (batch, time, vocab) of a wrapped `transformers` model."""

    def __init__(self, inner: Any, config: HFConfig) -> None:
        """Wrap `inner` (a `PreTrainedModel` with an LM head); key-value caching is switched off."""
        super().__init__()
        _conv1d_to_linear(inner)
        inner.config.use_cache = False
        self.inner: Any = inner
        self.config = config

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits for every position (the caller slices the window to `block_size`)."""
        logits: torch.Tensor = self.inner(input_ids=idx, use_cache=False).logits
        return logits

    @classmethod
    def from_config(cls, config: HFConfig) -> HFCausalLM:
        """An untrained model of the stored shape (weights come from a checkpoint next)."""
        from transformers import AutoConfig, AutoModelForCausalLM

        settings = dict(config.hf_config)
        model_type = settings.pop("model_type")
        hf_config = AutoConfig.for_model(model_type, **settings)
        inner = AutoModelForCausalLM.from_config(hf_config, dtype=torch.float32)  # type: ignore[no-untyped-call]
        return cls(inner, config)


def add_turn_markers(tokenizer: Tokenizer) -> Tokenizer:
    """Our special tokens, appended where the pretrained vocabulary lacks them."""
    missing = [token for token in SPECIALS if tokenizer.token_to_id(token) is None]
    if missing:
        tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in missing])
    return tokenizer


def load_hf_directory(path: Path, block_size: int) -> tuple[HFCausalLM, Tokenizer]:
    """Load a local Hugging Face causal LM and its fast tokenizer; nothing is downloaded."""
    path = Path(path)
    for required in ("config.json", "tokenizer.json"):
        if not (path / required).is_file():
            hint = " (save a fast tokenizer with save_pretrained)" if required == "tokenizer.json" else ""
            raise HFLoadError(f"{path}: no {required}{hint}")
    try:
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover - transformers is a project dependency
        raise HFLoadError(f"{path}: the transformers package is needed to load it ({exc})") from exc
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # clutters flow logs
    tokenizer = add_turn_markers(Tokenizer.from_file(str(path / "tokenizer.json")))
    try:
        inner: Any = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        summary = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HFLoadError(f"{path}: not a loadable causal language model: {summary}") from exc
    inner.resize_token_embeddings(tokenizer.get_vocab_size(), mean_resizing=False)
    hf_config = inner.config.to_dict()
    hf_config.pop("transformers_version", None)
    hf_config.pop("architectures", None)
    limit = getattr(inner.config, "max_position_embeddings", None) or getattr(
        inner.config, "n_positions", None
    )
    block = min(block_size, int(limit)) if limit else block_size
    vocab = int(inner.get_output_embeddings().weight.shape[0])
    config = HFConfig(vocab_size=vocab, block_size=block, hf_config=json.loads(json.dumps(hf_config)),
                      source=str(path.resolve()))  # fmt: skip
    return HFCausalLM(inner, config).eval(), tokenizer
