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
    return reply_logprobs(logits_fn, encoder, context, [reply])[0]


def reply_logprobs(
    logits_fn: Callable[[np.ndarray], np.ndarray],
    encoder: Encoder,
    context: list[Turn],
    replies: Sequence[str],
    batch: int = 16,
) -> list[float]:
    """`reply_logprob` of each reply, `batch` replies per forward pass.

    Rows are right-padded: attention is causal, so a row's logits never see the padding after
    it, and each row scores exactly as it would alone. One pass over ten candidates costs about
    what two single ones do on the CPU, and the evaluation ranks thousands.
    """
    out: list[float] = []
    for start in range(0, len(replies), batch):
        rows = [encoder.pair(context, reply) for reply in replies[start : start + batch]]
        rows = [(ids[-encoder.block :], mask[-encoder.block :]) for ids, mask in rows]
        width = max(len(ids) for ids, _ in rows)
        window = np.full((len(rows), width), encoder.pad, dtype=np.int64)
        for i, (ids, _) in enumerate(rows):
            window[i, : len(ids)] = ids
        logits = logits_fn(window)
        for i, (ids, mask) in enumerate(rows):
            # Only the positions that predict a reply token matter: log-softmax just those.
            where = np.flatnonzero(np.asarray(mask[1:], dtype=bool))
            if not len(where):
                out.append(0.0)
                continue
            chosen = logits[i, where].astype(np.float64)
            chosen -= chosen.max(axis=-1, keepdims=True)
            logp = chosen - np.log(np.exp(chosen).sum(axis=-1, keepdims=True))
            picked = logp[np.arange(len(where)), np.asarray(ids[1:], dtype=np.int64)[where]]
            out.append(float(picked.sum() / len(where)))
    return out
