"""Evaluation: validation loss, persona discrimination, style statistics of sampled replies."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from models.data import Batchable
from models.lm import LanguageModel

_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2764]")
_LAUGH = re.compile("[ㅋㅎ]")
_ENDING = re.compile(r"(\S{1,2})[.!?~ㅋㅎ♡❤️\s]*$")


@torch.no_grad()
def sequence_scores(model: LanguageModel, data: Batchable, batch_size: int = 64) -> torch.Tensor:
    """Mean log-probability per learned token of each sequence (higher: more like the model)."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        ids = data.ids[start : start + batch_size]
        mask = data.mask[start : start + batch_size, 1:]
        logp = F.log_softmax(model(ids)[:, :-1].float(), dim=-1)
        token_logp = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        out.append((token_logp * mask).sum(1) / mask.sum(1).clamp(min=1.0))
    return torch.cat(out) if out else torch.empty(0)


def discrimination_accuracy(
    model_a: LanguageModel, model_b: LanguageModel, replies_a: Batchable, replies_b: Batchable
) -> float:
    """Share of held-out replies that the right persona's model finds likelier than the other's."""
    a_right = sequence_scores(model_a, replies_a) > sequence_scores(model_b, replies_a)
    b_right = sequence_scores(model_b, replies_b) > sequence_scores(model_a, replies_b)
    total = len(a_right) + len(b_right)
    return float((a_right.sum() + b_right.sum()) / total) if total else float("nan")


def perplexity(loss: float) -> float:
    """exp(loss), capped so a diverged run still serialises."""
    return math.exp(min(loss, 50.0))


@dataclass(frozen=True)
class StyleStats:
    """Surface style of a set of replies."""

    n: int
    length_mean: float
    length_p90: float
    emoji_rate: float
    laugh_rate: float
    top_endings: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {**asdict(self), "top_endings": list(self.top_endings)}


def style_stats(texts: Sequence[str]) -> StyleStats:
    """Length, emoji and laughter rates, and the most common sentence endings."""
    texts = [t for t in texts if t.strip()]
    if not texts:
        return StyleStats(0, 0.0, 0.0, 0.0, 0.0, ())
    lengths = np.array([len(t) for t in texts])
    endings: Counter[str] = Counter()
    for t in texts:
        m = _ENDING.search(t.strip())
        if m:
            endings[m.group(1)] += 1
    return StyleStats(
        n=len(texts),
        length_mean=float(lengths.mean()),
        length_p90=float(np.percentile(lengths, 90)),
        emoji_rate=sum(bool(_EMOJI.search(t)) for t in texts) / len(texts),
        laugh_rate=sum(bool(_LAUGH.search(t)) for t in texts) / len(texts),
        top_endings=tuple(e for e, _ in endings.most_common(5)),
    )


def style_gap(real: StyleStats, sampled: StyleStats) -> dict[str, float]:
    """How far sampled replies are from real ones: relative length gap, rate gaps, ending overlap."""
    if not real.n or not sampled.n:
        return {}
    return {
        "length_rel_gap": abs(sampled.length_mean - real.length_mean) / max(real.length_mean, 1.0),
        "emoji_rate_gap": abs(sampled.emoji_rate - real.emoji_rate),
        "laugh_rate_gap": abs(sampled.laugh_rate - real.laugh_rate),
        "ending_overlap": len(set(real.top_endings) & set(sampled.top_endings))
        / max(1, len(real.top_endings)),
    }


def torch_logits_fn(model: LanguageModel) -> Callable[[np.ndarray], np.ndarray]:
    """`generate` backend over a torch model."""

    @torch.no_grad()
    def run(ids: np.ndarray) -> np.ndarray:
        model.eval()
        result: np.ndarray = model(torch.from_numpy(ids)).float().numpy()
        return result

    return run
