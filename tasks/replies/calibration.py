"""A persona's reply-ranker calibration: made on held-out sessions, stored, and read back.

The one home of calibrations: training and the evaluation make them (`calibrate`), the model's
manifest keeps the training embedder's under `chat`, an embedder switch stores another embedder's
beside the version (`calibration_key`), and chat, eval and the gate read the one that applies
(`calibration_under`).

The objective is one blandness cannot win: *response selection of what would be said*. For each
held-out context, what the ranker would say is compared with the context's real reply and with the
real replies of 9 other held-out contexts; its worth is the reciprocal rank of the real reply (a
tie counts against it), plus the *contrastive* score (similarity to the real reply minus the mean
similarity to the other contexts' real replies) to break ties. "그래" is about as close to every
reply, so it ranks the real one nowhere; a reply on the topic ranks it first. What is said when no
stored reply fits (the model's generation, else the fallback line) is measured the same way.
Held-out messages that occur word for word in the memory are answered with their twins left out
(`Memory.candidates(unseen=True)`): chats repeat lines, and a threshold learnt on exact repeats
answers nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from infra.errors import EmbedderError
from infra.registry import Registry
from infra.storage import Storage
from infra.text_features import Embedder
from models.data import Turn
from schemas.search import vector_tag
from tasks.replies.blandness import ReplyProfile
from tasks.replies.ranker import (
    THRESHOLD_RANGE,
    Calibration,
    Candidate,
    Likelihood,
    Memory,
    choose,
    last_message,
    ranking,
)

OBJECTIVE = "response selection (reciprocal rank of 10) + contrastive"
#: Real replies a said text must pick its context's out of (the scorecard's K).
K = 10
#: Fewer unseen held-out messages than this, and generation is not probed (the fallback line's worth).
MIN_PROBES = 4


def contrastive(said: np.ndarray, truth: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """cos(said_k, truth_i) minus the mean cos(said_k, truth_j) over the other contexts j.

    `rows[k]` is the context i that `said[k]` answers (default: row k answers context k).
    """
    n = len(truth)
    rows = np.arange(len(said)) if rows is None else rows
    if not len(said) or not n:
        return np.zeros(len(said))
    sims = said @ truth.T
    own = sims[np.arange(len(said)), rows]
    return np.asarray(own - (sims.sum(axis=1) - own) / (n - 1)) if n > 1 else own


@dataclass
class Judge:
    """What saying a text is worth for each held-out context: response selection + contrastive."""

    truth: np.ndarray
    distractors: list[np.ndarray]

    @classmethod
    def of(cls, replies: list[str], embedder: Embedder, k: int = K, seed: int = 0) -> Judge:
        """Each context's real reply against `k`-1 other contexts' (never a copy of its own text)."""
        rng = np.random.default_rng(seed)
        distractors = []
        for i, reply in enumerate(replies):
            others = np.asarray(
                [j for j, other in enumerate(replies) if j != i and other != reply], dtype=int
            )
            distractors.append(rng.choice(others, min(k - 1, len(others)), replace=False))
        return cls(embedder.passages(replies), distractors)

    def worth(self, said: np.ndarray, i: int) -> np.ndarray:
        """For each row of `said` (what would be said to context i): reciprocal rank + contrastive."""
        if not len(said):
            return np.zeros(0)
        own = said @ self.truth[i]
        others = self.distractors[i]
        rank = 1 + (said @ self.truth[others].T >= own[:, None]).sum(axis=1)
        chance = float(np.mean(1.0 / np.arange(1, len(others) + 2)))  # a random ranking's reciprocal rank
        return np.asarray(1.0 / rank - chance + contrastive(said, self.truth, np.full(len(said), i)))


def calibrate(
    held_out: list[tuple[list[Turn], str]],
    memory: Memory,
    embedder: Embedder,
    likelihood: Likelihood | None = None,
    say: Callable[[list[Turn]], str] | None = None,
    limit: int = 100,
    probe: int = 16,
    answer_floor: float | None = None,
) -> Calibration:
    """Weights and threshold under which what the persona says picks out what was said to it.

    What is said when no stored reply fits is worth what `say` (the model's generation) scores on
    the first `probe` contexts, else what the fallback line scores; `answer_floor` overrides both.
    """
    profile = ReplyProfile.build(memory.sources, embedder)
    items = [(c, r) for c, r in held_out if c and r.strip()][:limit]
    base = Calibration(embedder=embedder.name, objective=OBJECTIVE).with_profile(profile)
    if len(items) < 2 or not memory.replies:
        return base
    known = {a.strip() for a in memory.answered}
    verbatim = sum(last_message(c).strip() in known for c, _ in items)
    pools = [memory.candidates(c, embedder, unseen=True) for c, _ in items]
    if likelihood is not None:
        for (context, _), pool in zip(items, pools, strict=True):
            nearest = pool[:8]  # the forward passes are the cost: the nearest few suffice
            for candidate, value in zip(nearest, likelihood(context, [c.text for c in nearest]), strict=True):
                candidate.likelihood = value
    judge = Judge.of([r for _, r in items], embedder)
    worth = [judge.worth(memory.reply_vectors[[c.extra["index"] for c in p]], i) for i, p in enumerate(pools)]
    weights = _best_weights(base, pools, worth, likelihood is not None)
    floor = _floor(items, known, judge, embedder, say, probe) if answer_floor is None else answer_floor
    threshold, value, answered = _best_threshold(weights, pools, worth, floor, unrelated_similarity(memory))
    return replace(
        weights,
        threshold=threshold,
        answer_floor=floor,
        expected_quality=value,
        answered_share=answered,
        held_out=len(items),
        held_out_verbatim=verbatim,
        source="calibrated on held-out sessions (their verbatim twins left out of memory)",
    )


def _floor(
    items: list[tuple[list[Turn], str]],
    known: set[str],
    judge: Judge,
    embedder: Embedder,
    say: Callable[[list[Turn]], str] | None,
    probe: int,
) -> float:
    """What is worth saying when no stored reply fits: the model's generation, else the fallback line.

    Generation is probed only on messages the memory does not hold verbatim: the model has learnt
    the replies to those it was trained on by heart, which says nothing of a paraphrase.
    """
    from tasks.replies.chat import FALLBACK_LINE

    asked = [i for i, (context, _) in enumerate(items) if last_message(context).strip() not in known][:probe]
    if say is None or len(asked) < MIN_PROBES:
        say, asked = None, list(range(len(items)))
    texts = [(say(items[i][0]) if say is not None else FALLBACK_LINE) or FALLBACK_LINE for i in asked]
    vectors = embedder.passages(texts)
    return float(np.mean([judge.worth(vectors[k : k + 1], i)[0] for k, i in enumerate(asked)]))


def _best_weights(
    base: Calibration, pools: list[list[Candidate]], worth: list[np.ndarray], with_likelihood: bool
) -> Calibration:
    # The reply's own relevance keeps a small weight at least: where the answered messages tie (the
    # same "엄마 사랑해" answered many ways), it, not the search engine's order, picks the reply.
    grid = [
        replace(base, reply_weight=rw, likelihood_weight=lw)
        for rw in (0.1, 0.5, 1.0)
        for lw in ((0.0, 0.5) if with_likelihood else (0.0,))
    ]
    best, best_mean = grid[0], -np.inf
    for weights in grid:
        picks = [(i, choose(pool, weights, -np.inf)) for i, pool in enumerate(pools)]
        values = [float(worth[i][j]) for i, j in picks if j is not None]
        mean = float(np.mean(values)) if values else 0.0
        if mean > best_mean + 1e-9:
            best, best_mean = weights, mean
    return best


def unrelated_similarity(memory: Memory, pairs: int = 20_000, seed: int = 0) -> float:
    """How close two unrelated messages of this persona's chats are: a quarter of random pairs reach it.

    A user's message no closer than this to anything the persona answered is about something else
    (held-out sessions rarely go that low, so the score curve alone cannot place the threshold there).
    """
    vectors = memory.message_vectors
    if len(vectors) < 3:
        return THRESHOLD_RANGE[0]
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(vectors), pairs), rng.integers(0, len(vectors), pairs)
    keep = a != b
    return float(np.percentile(np.einsum("ij,ij->i", vectors[a[keep]], vectors[b[keep]]), 75))


def _best_threshold(
    weights: Calibration,
    pools: list[list[Candidate]],
    worth: list[np.ndarray],
    floor: float,
    unrelated: float,
) -> tuple[float, float, float]:
    """The lowest threshold (not below `unrelated`) whose expected worth is as good as the best's.

    "As good": within one standard error of the best mean. Held-out sessions hold few messages as
    far from everything stored as a paraphrase is, so a higher threshold that wins by noise on a
    handful of them would send most paraphrases to the fallback.
    """
    low, high = min(unrelated, THRESHOLD_RANGE[1]), THRESHOLD_RANGE[1]
    orders = [ranking(pool, weights) for pool in pools]
    fits = sorted(
        {round(c.context_similarity, 4) for p in pools for c in p if low <= c.context_similarity <= high}
    )
    trials = []
    for t in [low, *fits]:
        said = []
        for pool, order, value in zip(pools, orders, worth, strict=True):
            pick = next((i for i in order if pool[i].context_similarity >= t), None)
            said.append(floor if pick is None else float(value[pick]))
        trials.append((t, np.asarray(said)))
    best_mean, best_values = max(((float(v.mean()), v) for _, v in trials), key=lambda x: x[0])
    margin = float(best_values.std() / np.sqrt(len(best_values)))
    t, values = next((t, v) for t, v in trials if float(v.mean()) >= best_mean - margin)
    answered = sum(
        next((1 for i in o if p[i].context_similarity >= t), 0) for p, o in zip(pools, orders, strict=True)
    )
    return t, float(values.mean()), answered / len(pools)


def calibration_key(owner_id: str, persona_id: str, version: int, embedder: Embedder) -> str:
    """Where a text version's calibration for another embedder than its own is kept."""
    folder = f"{Registry.prefix(owner_id, persona_id, 'text')}/v{version}"
    return f"{folder}/calibration{vector_tag(embedder) or '-bundled'}.json"


def stored_calibration(
    storage: Storage, owner_id: str, persona_id: str, version: int, embedder: Embedder
) -> Calibration | None:
    """A version's stored calibration for `embedder`, if one was made."""
    key = calibration_key(owner_id, persona_id, version, embedder)
    if not storage.exists(key):
        return None
    try:
        calibration = Calibration.from_manifest({"chat": json.loads(storage.read_bytes(key))})
        float(calibration.threshold), float(calibration.reply_weight)
    except (ValueError, TypeError) as exc:  # not ours, or damaged: refused in one line
        where = storage.uri(key)
        raise EmbedderError(f"{where}: not a readable calibration ({exc}); run the switch again") from exc
    return calibration if calibration.made_with(embedder) else None


def calibration_under(storage: Storage, manifest: dict[str, Any], embedder: Embedder) -> Calibration | None:
    """The calibration a published text version ranks with under `embedder`, or None if it has none.

    Its own (from training) when it was made with `embedder`; else the one an embedder switch stored
    beside the version (tasks/training/recalibration.py).
    """
    own = Calibration.from_manifest(manifest)
    if own.made_with(embedder):
        return own
    return stored_calibration(
        storage, manifest["owner_id"], manifest["persona"], int(manifest["version"]), embedder
    )
