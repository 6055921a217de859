"""Choose what the persona says: their real replies re-ranked by relevance, a calibrated threshold.

One ranker for chat (candidates from the search index) and for the evaluation and calibration
(candidates from a dataset's training pairs in memory), so what is measured is what is said.

A candidate is a stored context->reply pair. Its signals, each standardised within the list:
- `context_similarity`: the user's message against the message the persona answered (both
  embedded as queries: they are compared like with like);
- `conversation_similarity`: the recent conversation (up to 3 turns) against the conversation
  the persona answered, when there is more than one turn;
- `reply_relevance`: the user's message against the reply itself (query -> passage): a reply that
  names what was said beats one that merely followed a similar-looking message;
- `likelihood`: the persona model's log-probability per token of the reply after the context.
A reply is said only when its context fits (`context_similarity >= threshold`); the threshold and
the weights are calibrated per persona on the held-out sessions (`calibrate`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from infra.text_features import Embedder
from models.data import Turn
from schemas.search import BUNDLED_EMBEDDER

CONTEXT_TURNS = 3
DEFAULT_THRESHOLD = 0.86
#: Thresholds are searched in this range: below it e5 cosines stop meaning "about the same thing".
THRESHOLD_RANGE = (0.70, 0.97)
#: Pseudonyms the datasets put in place of personal data: a reply holding one is never said.
PSEUDONYM = re.compile(r"<\s*(?:phone|rrn|card|account|email|address|url)", re.IGNORECASE)


@dataclass(frozen=True)
class Calibration:
    """How one persona's replies are chosen; kept in the model's manifest under `chat`."""

    threshold: float = DEFAULT_THRESHOLD
    reply_weight: float = 1.0
    conversation_weight: float = 0.5
    likelihood_weight: float = 0.0
    answer_floor: float | None = None  # semantic similarity of what is said when nothing fits
    expected_quality: float | None = None
    answered_share: float | None = None
    held_out: int = 0
    source: str = "default"
    #: The embedder whose cosines the threshold is in (None: calibrated before it was recorded,
    #: i.e. with the bundled one).
    embedder: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Calibration:
        """The calibration a model was published with (the defaults for older models)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (manifest.get("chat") or {}).items() if k in known})

    def made_with(self, embedder: Embedder) -> bool:
        """Whether the threshold and weights were calibrated on `embedder`'s vectors."""
        return (self.embedder or BUNDLED_EMBEDDER) == embedder.name


@dataclass
class Candidate:
    """One real reply the persona could say, with its relevance signals."""

    text: str
    context_similarity: float
    reply_relevance: float
    conversation_similarity: float | None = None
    likelihood: float | None = None
    source: str = "retrieved"
    extra: dict[str, Any] = field(default_factory=dict)


def reply_variants(reply: str) -> list[str]:
    """What may be said of a stored reply: the whole burst, and each of its lines alone.

    A reply is often a burst of several messages (`밥은 먹었니?`, `사랑해 우리 딸`, `반찬 더 필요하면
    말해` on three lines); the one line that answers what was said is still the persona's own words, and the
    ranker can pick it instead of the whole burst when it is the more relevant.
    """
    lines = [line.strip() for line in reply.split("\n") if line.strip()]
    return [reply] if len(lines) < 2 else [reply, *dict.fromkeys(lines)]


def last_message(context: Sequence[Turn]) -> str:
    """What the user said last (the newest turn not by the persona)."""
    for turn in reversed(context):
        if not turn.is_persona:
            return turn.text
    return context[-1].text if context else ""


def conversation_text(context: Sequence[Turn], turns: int = CONTEXT_TURNS) -> str:
    """The recent conversation as one text: the last `turns` turns, oldest first."""
    return " / ".join(t.text for t in context[-turns:])


def _z(values: Sequence[float | None]) -> np.ndarray:
    x = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    if np.all(np.isnan(x)):
        return np.zeros(len(x))
    x = np.where(np.isnan(x), np.nanmin(x), x)
    std = x.std()
    return (x - x.mean()) / std if std > 1e-9 else np.zeros(len(x))


def scores(candidates: Sequence[Candidate], calibration: Calibration) -> np.ndarray:
    """Each candidate's relevance score (standardised signals, calibrated weights)."""
    if not candidates:
        return np.zeros(0)
    total = _z([c.context_similarity for c in candidates])
    total += calibration.reply_weight * _z([c.reply_relevance for c in candidates])
    if any(c.conversation_similarity is not None for c in candidates):
        total += calibration.conversation_weight * _z([c.conversation_similarity for c in candidates])
    if calibration.likelihood_weight and any(c.likelihood is not None for c in candidates):
        total += calibration.likelihood_weight * _z([c.likelihood for c in candidates])
    return total


def choose(candidates: Sequence[Candidate], calibration: Calibration) -> int | None:
    """The index of the reply to say, or None when no real reply fits what was said."""
    ranked = scores(candidates, calibration)
    best, best_score = None, -np.inf
    for i, c in enumerate(candidates):
        if c.context_similarity < calibration.threshold or PSEUDONYM.search(c.text) or not c.text.strip():
            continue
        if ranked[i] > best_score:
            best, best_score = i, float(ranked[i])
    return best


@dataclass
class Memory:
    """A persona's context->reply pairs with their vectors, searched in memory (eval, calibration)."""

    contexts: list[list[Turn]]
    replies: list[str]
    message_vectors: np.ndarray
    conversation_vectors: np.ndarray
    reply_vectors: np.ndarray

    @classmethod
    def build(cls, pairs: Sequence[tuple[list[Turn], str]], embedder: Embedder) -> Memory:
        """Embed each pair as the index does (tasks/indexing/indexer.py)."""
        usable = [(c, v) for c, r in pairs if c and r.strip() for v in reply_variants(r)]
        contexts, replies = [c for c, _ in usable], [r for _, r in usable]
        return cls(
            contexts,
            replies,
            embedder.queries([last_message(c) for c in contexts]),
            embedder.queries([conversation_text(c) for c in contexts]),
            embedder.passages(replies),
        )

    def candidates(
        self, context: Sequence[Turn], embedder: Embedder, size: int = 20, exclude: str | None = None
    ) -> list[Candidate]:
        """The `size` pairs whose answered message is most like the user's (plus reply relevance)."""
        if not self.replies:
            return []
        message = embedder.query(last_message(context))
        by_message = self.message_vectors @ message
        relevance = self.reply_vectors @ message
        multi = len(context) > 1
        by_conversation = (
            self.conversation_vectors @ embedder.query(conversation_text(context)) if multi else None
        )
        order = np.argsort(-by_message, kind="stable")
        out: list[Candidate] = []
        seen: set[str] = set()
        for i in order:
            reply = self.replies[i]
            if reply in seen or reply == exclude:
                continue
            seen.add(reply)
            out.append(
                Candidate(
                    reply,
                    float(by_message[i]),
                    float(relevance[i]),
                    None if by_conversation is None else float(by_conversation[i]),
                    extra={"index": int(i)},
                )
            )
            if len(out) >= size:
                break
        return out


#: (context, replies) -> each reply's mean log-probability per token, scored in batches.
Likelihood = Callable[[list[Turn], list[str]], list[float]]


def calibrate(
    held_out: Sequence[tuple[list[Turn], str]],
    memory: Memory,
    embedder: Embedder,
    likelihood: Likelihood | None = None,
    answer_floor: float | None = None,
    limit: int = 100,
) -> Calibration:
    """Weights and threshold that make the chosen replies closest in meaning to the real ones.

    For each held-out context the real reply is known; the quality of an answer is the semantic
    similarity of what would be said to it. Weights: a small grid, the best mean quality of the
    top-ranked reply. Threshold: below it the persona does not answer with a stored reply, and
    what it says then is worth `answer_floor` on average (generated replies' similarity to the
    real ones, measured by the caller; 0 when unknown): the threshold is the one that maximises
    the expected quality over the held-out contexts.
    """
    items = [(c, r) for c, r in held_out if c and r.strip()][:limit]
    if not items or not memory.replies:
        return Calibration(embedder=embedder.name)
    truth = embedder.passages([r for _, r in items])
    pools = [memory.candidates(c, embedder) for c, _ in items]
    if likelihood is not None:
        for (context, _), pool in zip(items, pools, strict=True):
            nearest = pool[:8]  # the forward passes are the cost: the nearest few suffice
            for candidate, value in zip(nearest, likelihood(context, [c.text for c in nearest]), strict=True):
                candidate.likelihood = value

    def quality(i: int, pool: list[Candidate], pick: int) -> float:
        vector = memory.reply_vectors[pool[pick].extra["index"]]
        return float(np.dot(vector, truth[i]))

    # The reply's own relevance keeps a small weight at least: where the answered messages tie (the
    # same "엄마 사랑해" answered many ways), it, not the search engine's order, picks the reply.
    grid = [
        Calibration(reply_weight=rw, likelihood_weight=lw)
        for rw in (0.1, 0.5, 1.0)
        for lw in ((0.0, 0.5) if likelihood is not None else (0.0,))
    ]
    best_weights, best_mean = grid[0], -np.inf
    for weights in grid:
        means = []
        for i, pool in enumerate(pools):
            if pool:
                means.append(quality(i, pool, int(np.argmax(scores(pool, weights)))))
        mean = float(np.mean(means)) if means else 0.0
        if mean > best_mean + 1e-9:
            best_weights, best_mean = weights, mean
    floor = 0.0 if answer_floor is None else float(answer_floor)
    low, high = THRESHOLD_RANGE
    fits = sorted(
        {
            round(c.context_similarity, 4)
            for pool in pools
            for c in pool
            if low <= c.context_similarity <= high
        }
    )
    best_t, best_value, best_answered = high, -np.inf, 0.0
    for t in [low, *fits]:
        trial = Calibration(**{**best_weights.to_dict(), "threshold": t})
        values, answered = [], 0
        for i, pool in enumerate(pools):
            pick = choose(pool, trial)
            if pick is None:
                values.append(floor)
            else:
                values.append(quality(i, pool, pick))
                answered += 1
        value = float(np.mean(values))
        if value > best_value + 1e-9:
            best_t, best_value, best_answered = t, value, answered / len(pools)
    return Calibration(
        threshold=best_t,
        reply_weight=best_weights.reply_weight,
        conversation_weight=best_weights.conversation_weight,
        likelihood_weight=best_weights.likelihood_weight,
        answer_floor=answer_floor,
        expected_quality=best_value,
        answered_share=best_answered,
        held_out=len(items),
        source="calibrated on held-out sessions",
        embedder=embedder.name,
    )
