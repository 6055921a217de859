"""Sampling from a language model with any backend (numpy only: chat loads no torch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from models.data import Encoder, Turn


def sample_next(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """One token from the last position's logits with temperature and nucleus (top-p) sampling."""
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    z -= z.max()
    probs = np.exp(z)
    probs /= probs.sum()
    order = np.argsort(-probs)
    cumulative = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(cumulative, top_p) + 1)]
    kept = probs[keep] / probs[keep].sum()
    return int(rng.choice(keep, p=kept))


def generate(
    logits_fn: Callable[[np.ndarray], np.ndarray],
    prompt: list[int],
    eos_id: int,
    block_size: int,
    max_new: int = 40,
    temperature: float = 0.8,
    top_p: float = 0.9,
    seed: int = 0,
    banned: Sequence[int] = (),
) -> list[int]:
    """Sample up to `max_new` tokens after `prompt` with any backend (torch or onnxruntime).

    `logits_fn` maps ids (1, t) to logits (1, t, vocab); the window slides over the newest
    `block_size` tokens (re-encoding: the small model makes that cheaper than a KV cache export).
    """
    rng = np.random.default_rng(seed)
    ids = list(prompt)
    out: list[int] = []
    for _ in range(max_new):
        window = np.asarray([ids[-block_size:]], dtype=np.int64)
        last = logits_fn(window)[0, -1].copy()
        for token in banned:
            last[token] = -np.inf
        token = sample_next(last, temperature, top_p, rng)
        if token == eos_id:
            break
        ids.append(token)
        out.append(token)
    return out


def reply_logprob(
    logits_fn: Callable[[np.ndarray], np.ndarray], encoder: Encoder, context: list[Turn], reply: str
) -> float:
    """Mean log-probability per token of `reply` after `context` (any backend: torch or onnxruntime)."""
    ids, mask = encoder.pair(context, reply)
    window = np.asarray([ids[-encoder.block :]], dtype=np.int64)
    weights = np.asarray(mask[-encoder.block :][1:], dtype=np.float64)
    logits = logits_fn(window)[0, :-1].astype(np.float64)
    logits -= logits.max(axis=-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = logp[np.arange(window.shape[1] - 1), window[0, 1:]]
    return float((picked * weights).sum() / max(weights.sum(), 1.0))
