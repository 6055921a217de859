"""LoRA: fine-tune a larger base through low-rank adapters, then merge them for export.

Only the adapters train (the base stays frozen, so a persona needs little memory and data); the
merged model is a plain GPT again, so ONNX export, parity and the registry do not change.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.gpt import GPT


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


def _sites(model: GPT) -> list[tuple[nn.Module, str]]:
    """(parent module, attribute name) of every projection that gets an adapter."""
    sites: list[tuple[nn.Module, str]] = []
    for block in model.blocks:
        attn = block.get_submodule("attn")
        mlp = block.get_submodule("mlp")
        sites += [(attn, "qkv"), (attn, "proj"), (mlp, "0"), (mlp, "2")]
    return sites


def apply_lora(model: GPT, rank: int = 8, alpha: float = 16.0) -> GPT:
    """Freeze `model` and put adapters on every attention and MLP projection (in place)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for parent, name in _sites(model):
        layer = parent.get_submodule(name)
        if isinstance(layer, nn.Linear):
            parent.register_module(name, LoRALinear(layer, rank, alpha))
    return model


def merge_lora(model: GPT) -> GPT:
    """Fold the adapters into the weights (in place); the result is a plain, fully trainable GPT."""
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
