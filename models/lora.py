"""LoRA: fine-tune a larger base through low-rank adapters, then merge them for export.

Only the adapters train (the base stays frozen, so a persona needs little memory and data); the
merged model is a plain model again, so ONNX export, parity and the registry do not change. Our
GPT gets adapters on its attention and MLP projections; a wrapped Hugging Face model on every
linear layer but the LM head.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.hf import HFCausalLM
from models.lm import LanguageModel


class LoRALinear(nn.Module):
    """`base(x) + scale * B(A(x))` with `A` (rank x in) and `B` (out x rank, zero at start)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        """Wrap `base` (frozen) with trainable rank-`rank` adapters."""
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.a = nn.Parameter(torch.empty(rank, base.in_features))
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen projection plus the low-rank update."""
        out: torch.Tensor = self.base(x) + (x @ self.a.T @ self.b.T) * self.scale
        return out

    def merged(self) -> nn.Linear:
        """A plain Linear computing the same function."""
        linear = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(self.base.weight + (self.b @ self.a) * self.scale)
            if self.base.bias is not None and linear.bias is not None:
                linear.bias.copy_(self.base.bias)
        return linear


def _sites(model: LanguageModel) -> list[tuple[nn.Module, str]]:
    """(parent module, attribute name) of every projection that gets an adapter."""
    if isinstance(model, HFCausalLM):
        return _hf_sites(model)
    sites: list[tuple[nn.Module, str]] = []
    for block in model.blocks:
        attn = block.get_submodule("attn")
        mlp = block.get_submodule("mlp")
        sites += [(attn, "qkv"), (attn, "proj"), (mlp, "0"), (mlp, "2")]
    return sites


def _hf_sites(model: HFCausalLM) -> list[tuple[nn.Module, str]]:
    """Every linear layer (or adapter already in place) except the LM head."""
    head = model.inner.get_output_embeddings()
    inner: nn.Module = model.inner
    sites: list[tuple[nn.Module, str]] = []
    for name, module in inner.named_modules():
        parent_name, _, child = name.rpartition(".")
        parent = inner.get_submodule(parent_name) if parent_name else inner
        if isinstance(module, LoRALinear) or (
            isinstance(module, nn.Linear) and module is not head and not isinstance(parent, LoRALinear)
        ):
            sites.append((parent, child))
    return sites


def apply_lora(model: LanguageModel, rank: int = 8, alpha: float = 16.0) -> LanguageModel:
    """Freeze `model` and put adapters on every attention and MLP projection (in place)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for parent, name in _sites(model):
        layer = parent.get_submodule(name)
        if isinstance(layer, nn.Linear):
            parent.register_module(name, LoRALinear(layer, rank, alpha))
    return model


def merge_lora(model: LanguageModel) -> LanguageModel:
    """Fold the adapters into the weights (in place); the result is a plain, fully trainable model."""
    for parent, name in _sites(model):
        layer = parent.get_submodule(name)
        if isinstance(layer, LoRALinear):
            parent.register_module(name, layer.merged())
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def trainable_parameters(model: nn.Module) -> int:
    """Parameters the optimiser will update."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
