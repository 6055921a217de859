"""Does the persona answer what was said? A scorecard on a dataset version's held-out sessions.

Response selection (the standard measure of retrieval dialogue systems, no human labels): for
each held-out context, the persona's real reply is ranked among K-1 distractors (other replies
of the same persona from other sessions) by each answering component:
- `likelihood`: the persona model's mean log-probability per token of the reply after the
  context (onnxruntime, the graph chat runs);
- `similarity`: the sentence embedder's cosine between the recent conversation (as a query) and
  the reply (as a passage);
- `hybrid`: both, standardised within the candidate list and added.
A tie counts against the real reply (it must be strictly ahead), so a component that cannot tell
replies apart scores recall@1 = 0, not 1/K by luck.

Answer quality: the reply a memory of the training pairs would give to each held-out context
(the training context most like the conversation, its real reply; replies holding a pseudonym
are no candidates, as in chat), against the real reply: semantic similarity, exact share, style
gaps, and safety counts (pseudonyms, empty replies) that must be 0.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from infra.storage import Storage
from infra.text_features import Embedder
from models.data import Turn

Scorer = Callable[[list[Turn], list[str]], np.ndarray]
_PSEUDONYM = re.compile(r"<\s*(?:phone|rrn|card|account|email|address|url)", re.IGNORECASE)
_LAUGH = re.compile(r"[ㅋㅎ]{2,}|[ㅠㅜ]{2,}")


@dataclass(frozen=True)
class HeldOut:
    """One held-out (or memory) pair: its session, the conversation before, the real reply."""

    session_id: str
    context: list[Turn]
    reply: str


@dataclass
class Selection:
    """Response selection of one component."""

    recall_at_1: float
    mrr: float
    n: int
    k: int


@dataclass
class Scorecard:
    """What `rememberme eval` prints and a manifest keeps."""

    selection: dict[str, Selection] = field(default_factory=dict)
    answer: dict[str, float] = field(default_factory=dict)
    safety: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def markdown(self, title: str) -> str:
        """The scorecard as a Markdown table (UI artifact, CLI)."""
        lines = [f"# {title}", "", "| component | recall@1 of K | MRR | n |", "|---|---|---|---|"]
        for name, s in self.selection.items():
            lines.append(f"| {name} | {s.recall_at_1:.3f} (K={s.k}) | {s.mrr:.3f} | {s.n} |")
        lines += ["", "| answer quality | value |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in self.answer.items()]
        lines += ["", "| safety (must be 0) | count |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in self.safety.items()]
        return "\n".join(lines)


def read_held_out(storage: Storage, key: str) -> list[HeldOut]:
    """Pairs of one dataset split with their session ids."""
    table = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["session_id", "context", "reply"])
    return [
        HeldOut(
            str(row["session_id"]),
            [Turn(t["text"], bool(t["is_persona"])) for t in row["context"]],
            row["reply"],
        )
        for row in table.to_pylist()
    ]


def conversation_text(context: list[Turn], turns: int = 3) -> str:
    """The recent conversation as one query: the last `turns` turns, oldest first."""
    return " / ".join(t.text for t in context[-turns:])


def response_selection(
    held_out: list[HeldOut], pool: list[HeldOut], scorer: Scorer, k: int = 10, limit: int = 200, seed: int = 0
) -> Selection:
    """Recall@1 of K and MRR of the real reply among K-1 distractors from other sessions."""
    rng = random.Random(seed)
    hits, reciprocal, n = 0, 0.0, 0
    for item in held_out[:limit]:
        others = sorted({p.reply for p in pool if p.session_id != item.session_id and p.reply != item.reply})
        if len(others) < k - 1:
            continue
        candidates = [item.reply, *rng.sample(others, k - 1)]
        scores = np.asarray(scorer(item.context, candidates), dtype=np.float64)
        rank = 1 + int((scores[1:] >= scores[0]).sum())  # ties count against the real reply
        hits += int(rank == 1)
        reciprocal += 1.0 / rank
        n += 1
    return Selection(hits / n if n else 0.0, reciprocal / n if n else 0.0, n, k)


def similarity_scorer(embedder: Embedder) -> Scorer:
    """Cosine of the conversation (query) and each reply (passage); replies embedded once."""
    cache: dict[str, np.ndarray] = {}
    queries: dict[str, np.ndarray] = {}

    def score(context: list[Turn], replies: list[str]) -> np.ndarray:
        missing = [r for r in replies if r not in cache]
        if missing:
            cache.update(zip(missing, embedder.passages(missing), strict=True))
        text = conversation_text(context)
        if text not in queries:
            queries[text] = embedder.query(text)
        return np.asarray([float(np.dot(queries[text], cache[r])) for r in replies])

    return score


def likelihood_scorer(likelihood: Callable[[list[Turn], str], float]) -> Scorer:
    """The persona model's mean log-probability per token of each reply after the context.

    Memoised: the hybrid ranks the same candidates again, and a forward pass is the cost here.
    """
    memo: dict[tuple[tuple[tuple[str, bool], ...], str], float] = {}

    def score(context: list[Turn], replies: list[str]) -> np.ndarray:
        key = tuple((t.text, t.is_persona) for t in context)
        for reply in replies:
            if (key, reply) not in memo:
                memo[(key, reply)] = likelihood(context, reply)
        return np.asarray([memo[(key, r)] for r in replies])

    return score


def hybrid_scorer(*scorers: Scorer) -> Scorer:
    """Each scorer standardised within the candidate list, then added (no scale dominates)."""

    def score(context: list[Turn], replies: list[str]) -> np.ndarray:
        total = np.zeros(len(replies))
        for scorer in scorers:
            s = np.asarray(scorer(context, replies), dtype=np.float64)
            total += (s - s.mean()) / (s.std() + 1e-9)
        return total

    return score


def answer_quality(
    held_out: list[HeldOut], memory: list[HeldOut], embedder: Embedder, limit: int = 200
) -> tuple[dict[str, float], dict[str, int]]:
    """What a memory of the training pairs answers to each held-out context, against the truth."""
    items = held_out[:limit]
    memory = [m for m in memory if not _PSEUDONYM.search(m.reply)]  # chat never says those (tasks/chat.py)
    if not items or not memory:
        return {}, {"pseudonyms": 0, "empty": 0}
    keys = embedder.passages([conversation_text(m.context) for m in memory])
    chosen = []
    for item in items:
        best = int(np.argmax(keys @ embedder.query(conversation_text(item.context))))
        chosen.append(memory[best].reply)
    truth = embedder.passages([i.reply for i in items])
    said = embedder.passages(chosen)
    real = [i.reply for i in items]
    quality = {
        "semantic_similarity": float(np.mean(np.sum(truth * said, axis=1))),
        "exact_share": float(np.mean([a == b for a, b in zip(chosen, real, strict=True)])),
        "length_gap": abs(float(np.mean([len(c) for c in chosen])) - float(np.mean([len(r) for r in real]))),
        "laughter_gap": abs(_share(chosen, _LAUGH) - _share(real, _LAUGH)),
    }
    safety = {
        "pseudonyms": sum(bool(_PSEUDONYM.search(c)) for c in chosen),
        "empty": sum(not c.strip() for c in chosen),
    }
    return quality, safety


def _share(texts: list[str], pattern: re.Pattern[str]) -> float:
    return float(np.mean([bool(pattern.search(t)) for t in texts])) if texts else 0.0


def scorecard(
    held_out: list[HeldOut],
    memory: list[HeldOut],
    embedder: Embedder,
    likelihood: Callable[[list[Turn], str], float] | None,
    k: int = 10,
    limit: int = 200,
) -> Scorecard:
    """Response selection of each component and answer quality, on the held-out pairs."""
    pool = held_out + memory
    similarity = similarity_scorer(embedder)
    card = Scorecard()
    card.selection["similarity"] = response_selection(held_out, pool, similarity, k, limit)
    if likelihood is not None:
        model = likelihood_scorer(likelihood)
        card.selection["likelihood"] = response_selection(held_out, pool, model, k, limit)
        card.selection["hybrid"] = response_selection(
            held_out, pool, hybrid_scorer(model, similarity), k, limit
        )
    card.answer, card.safety = answer_quality(held_out, memory, embedder, limit)
    return card


def evaluate_persona(
    storage: Storage, owner_id: str, persona_id: str, version: str | int | None, embedder: Embedder
) -> tuple[dict[str, Any], Scorecard]:
    """The scorecard of a published text version on its dataset's held-out sessions."""
    from tasks.chat import PersonaChat

    chat = PersonaChat(storage, owner_id, persona_id, version, mode="generate")
    dataset = int(chat.manifest["dataset"]["version"])
    prefix = f"datasets/{owner_id}/{persona_id}/v{dataset}"
    held_out = read_held_out(storage, f"{prefix}/validation.parquet")
    memory = read_held_out(storage, f"{prefix}/train.parquet")
    card = scorecard(held_out, memory, embedder, chat.likelihood)
    meta = {
        "owner_id": owner_id,
        "persona_id": persona_id,
        "version": chat.version,
        "dataset_version": dataset,
    }
    return meta, card


def to_json(meta: dict[str, Any], card: Scorecard) -> str:
    """One JSON object: which version, and its scorecard."""
    return json.dumps({**meta, **card.to_dict()}, ensure_ascii=False)
