"""The training loop: AdamW, warmup + cosine, clipping, bf16 autocast, early stop, seeded, resumable.

No I/O: the caller passes `on_checkpoint` to store the resumable state wherever it likes, and
`resume` to continue from one. The same loop pretrains the base (every token learned) and
fine-tunes a persona (reply tokens only): the difference is in the masks of the data.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812

from infra.faults import fault_point
from models.data import Batchable
from models.lm import LanguageModel


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; part of every checkpoint's manifest."""

    max_steps: int = 300
    batch_size: int = 16
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 25
    patience: int = 4  # evaluations without improvement before stopping
    seed: int = 13
    device: str = "auto"  # "auto": cuda when available, else cpu
    # "auto": bf16 autocast on CUDA, fp32 on CPU; "bf16" or "fp32" on any device. bf16 keeps
    # fp32's exponent range, so no loss scaling is needed (unlike fp16).
    precision: str = "auto"
    threads: int = 0  # CPU threads for torch (0: leave torch's default)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class TrainResult:
    """What a run produced: the best weights by validation loss and the curve."""

    state_dict: dict[str, torch.Tensor]
    best_val_loss: float
    best_step: int
    steps: int
    tokens: int
    seconds: float
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        """Training throughput (tokens fed, padding excluded)."""
        return self.tokens / self.seconds if self.seconds else 0.0


def pick_device(name: str = "auto") -> torch.device:
    """Cuda when asked for or available (with "auto"), else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warmup, then cosine decay to `min_lr_ratio * lr`."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def trim(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a batch to its longest sequence: short chat pairs padded to the block waste most compute."""
    used = (ids != 0).any(0).nonzero()
    width = int(used.max()) + 1 if len(used) else 2
    return ids[:, : max(width, 2)], mask[:, : max(width, 2)]


def masked_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over positions whose target is masked in."""
    targets = ids[:, 1:]
    weights = mask[:, 1:]
    losses = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    )
    return (losses * weights.reshape(-1)).sum() / weights.sum().clamp(min=1.0)


@torch.no_grad()
def evaluate_loss(model: LanguageModel, data: Batchable, device: torch.device, batch_size: int = 64) -> float:
    """Token-weighted mean loss over `data`."""
    model.eval()
    total, weight = 0.0, 0.0
    for start in range(0, len(data), batch_size):
        ids, mask = trim(data.ids[start : start + batch_size], data.mask[start : start + batch_size])
        ids, mask = ids.to(device), mask.to(device)
        n = float(mask[:, 1:].sum())
        if n:
            total += float(masked_loss(model(ids), ids, mask)) * n
            weight += n
    model.train()
    return total / weight if weight else float("nan")


def _optimizer(model: LanguageModel, config: TrainConfig) -> torch.optim.AdamW:
    trainable = [p for p in model.parameters() if p.requires_grad]  # LoRA freezes the base
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95))


def seed_everything(seed: int) -> None:
    """Python, torch (CPU and CUDA) seeds."""
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def train(
    model: LanguageModel,
    train_data: Batchable,
    val_data: Batchable,
    config: TrainConfig,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
) -> TrainResult:
    """Train `model` in place and return the best weights (lowest validation loss) and the curve."""
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    device = pick_device(config.device)
    model.to(device).train()
    optimizer = _optimizer(model, config)
    if config.precision not in ("auto", "bf16", "fp32"):
        raise ValueError("precision must be auto, bf16 or fp32")
    use_amp = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    generator = torch.Generator().manual_seed(config.seed)
    step, best_val, best_step, bad, tokens = 0, math.inf, 0, 0, 0
    history: list[dict[str, float]] = []
    best_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        generator.set_state(resume["generator"])
        step, best_val, best_step, bad = (
            resume["step"],
            resume["best_val"],
            resume["best_step"],
            resume["bad"],
        )
        tokens, history, best_state = resume["tokens"], resume["history"], resume["best_state"]
    started = time.perf_counter() - (resume or {}).get("seconds", 0.0)
    stopped_early = False
    train_loss_sum, train_loss_n = 0.0, 0
    while step < config.max_steps:
        rows = torch.randint(len(train_data), (config.batch_size,), generator=generator)
        ids, mask = trim(train_data.ids[rows], train_data.mask[rows])
        ids, mask = ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = masked_loss(model(ids), ids, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(
            [p for p in model.parameters() if p.requires_grad], config.grad_clip, foreach=True
        )
        optimizer.step()
        step += 1
        fault_point("train.step")
        tokens += int((ids != 0).sum())
        train_loss_sum += loss.item()
        train_loss_n += 1
        if step % config.eval_every == 0 or step == config.max_steps:
            val = evaluate_loss(model, val_data, device)
            history.append(
                {
                    "step": step,
                    "train_loss": train_loss_sum / train_loss_n,
                    "val_loss": val,
                    "lr": lr_at(step - 1, config),
                }
            )
            train_loss_sum, train_loss_n = 0.0, 0
            if val < best_val - 1e-4:
                best_val, best_step, bad = val, step, 0
                best_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
            else:
                bad += 1
            if on_checkpoint is not None:
                on_checkpoint(
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(),
                        "step": step,
                        "best_val": best_val,
                        "best_step": best_step,
                        "bad": bad,
                        "tokens": tokens,
                        "history": history,
                        "best_state": best_state,
                        "seconds": time.perf_counter() - started,
                    }
                )
            if bad >= config.patience:
                stopped_early = True
                break
    model.load_state_dict(best_state)
    model.to("cpu").eval()
    return TrainResult(
        best_state, best_val, best_step, step, tokens, time.perf_counter() - started, stopped_early, history
    )
