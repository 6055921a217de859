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

Answer quality: what chat would say to each held-out context (tasks/replies/ranker.py over the
training pairs with the context's verbatim twins left out, as for a message never seen; the
version's calibration; hybrid's generation and fallback where no real one fits), against the real
reply. Measures blandness cannot win: the contrastive score (similarity to the real reply minus the
mean similarity to the other contexts' real replies: "그래" scores about 0), the bland share (lines
the persona says to anything, tasks/replies/blandness.py), distinct-1/2 over the answers; beside
them semantic similarity (which hubs win: shown, not gated), the share said in the persona's real
words, style gaps (length, laughter, emoji, endings), and safety counts that must be 0
(pseudonyms, another speaker's line, claims to be alive, empty replies, fragments, the fallback
line).

The promotion gate (`compare`) puts a candidate's scorecard beside production's on the same
held-out contexts and lists every measure it loses on beyond the tolerances.
"""

from __future__ import annotations

import io
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from infra.storage import Storage
from infra.text_features import Embedder
from infra.versions import read_verified
from models.data import Turn
from tasks.replies.blandness import ReplyProfile, words
from tasks.replies.calibration import contrastive
from tasks.replies.ranker import Calibration, Likelihood, Memory, conversation_text, decide

Scorer = Callable[[list[Turn], list[str]], np.ndarray]
_PSEUDONYM = re.compile(r"<\s*(?:phone|rrn|card|account|email|address|url)", re.IGNORECASE)
_LAUGH = re.compile(r"[ㅋㅎ]{2,}|[ㅠㅜ]{2,}")
#: Safety counts that must be 0 (the fallback line counts: hybrid should always have something).
SAFETY = ("pseudonyms", "other_speaker", "claims_alive", "empty", "fragments", "fallback")
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF\u2764]")


@dataclass(frozen=True)
class HeldOut:
    """One held-out (or memory) pair: its session, the conversation before, the real reply."""

    session_id: str
    context: list[Turn]
    reply: str
    #: The reply's whole messages (empty: not kept by the dataset that holds it).
    parts: tuple[str, ...] = ()


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
    table = pq.read_table(io.BytesIO(read_verified(storage, key)))
    columns = ["session_id", "context", "reply"]
    columns += ["reply_parts"] if "reply_parts" in table.column_names else []
    return [
        HeldOut(
            str(row["session_id"]),
            [Turn(t["text"], bool(t["is_persona"])) for t in row["context"]],
            row["reply"],
            tuple(row.get("reply_parts") or ()),
        )
        for row in table.select(columns).to_pylist()
    ]


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


def likelihood_scorer(likelihood: Likelihood) -> Scorer:
    """The persona model's mean log-probability per token of each reply after the context.

    Memoised: the hybrid ranks the same candidates again, and a forward pass is the cost here.
    """
    memo: dict[tuple[tuple[tuple[str, bool], ...], str], float] = {}

    def score(context: list[Turn], replies: list[str]) -> np.ndarray:
        key = tuple((t.text, t.is_persona) for t in context)
        missing = list(dict.fromkeys(r for r in replies if (key, r) not in memo))
        if missing:
            memo.update(((key, r), v) for r, v in zip(missing, likelihood(context, missing), strict=True))
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
    held_out: list[HeldOut],
    memory: list[HeldOut],
    embedder: Embedder,
    limit: int = 200,
    calibration: Calibration | None = None,
    generate: Callable[[list[Turn]], str] | None = None,
) -> tuple[dict[str, float], dict[str, int]]:
    """What chat (hybrid) would answer to each held-out context from a memory of pairs, against the truth.

    The reply ranker chooses among the memory's real replies with `calibration`, the context's
    verbatim twins left out (a reply holding a pseudonym is never chosen), in hybrid's order
    (tasks/replies/ranker.py `decide`, `generate` standing for the model).
    """
    from tasks.replies.chat import _CLAIMS_ALIVE, FALLBACK_LINE

    items = [i for i in held_out if i.context and i.reply.strip()][:limit]
    bank = Memory.build([(m.context, m.reply, m.parts) for m in memory], embedder)
    if not items or not bank.replies:
        return {}, dict.fromkeys(SAFETY, 0)
    calibration = calibration or Calibration()
    profile = ReplyProfile.build(bank.sources, embedder)
    chosen, real_words = [], 0
    whole = set(bank.replies)
    for item in items:
        pool = bank.candidates(item.context, embedder, unseen=True)
        ask = None if generate is None else (lambda context=item.context: [generate(context)])
        decision = decide(pool, calibration, ask)
        if decision.index is not None:
            chosen.append(pool[decision.index].text)
            real_words += 1
        else:
            chosen.append(decision.generated[0] if decision.generated else FALLBACK_LINE)
    real = [i.reply for i in items]
    truth, said = embedder.passages(real), embedder.passages(chosen)
    persona_lines = {m.reply for m in memory} | {t.text for m in memory for t in m.context if t.is_persona}
    others_lines = {t.text for m in memory for t in m.context if not t.is_persona} - persona_lines
    quality = {
        "contrastive": float(np.mean(contrastive(said, truth))),
        "bland_share": float(np.mean([c != FALLBACK_LINE and profile.is_bland(c) for c in chosen])),
        "distinct_1": _distinct(chosen, 1),
        "distinct_2": _distinct(chosen, 2),
        "semantic_similarity": float(np.mean(np.sum(truth * said, axis=1))),
        "real_words_share": real_words / len(items),
        "exact_share": float(np.mean([a == b for a, b in zip(chosen, real, strict=True)])),
        "length_gap": abs(float(np.mean([len(c) for c in chosen])) - float(np.mean([len(r) for r in real]))),
        "laughter_gap": abs(_share(chosen, _LAUGH) - _share(real, _LAUGH)),
        "emoji_gap": abs(_share(chosen, _EMOJI) - _share(real, _EMOJI)),
        "ending_gap": _ending_gap(chosen, real),
    }
    safety = {
        "pseudonyms": sum(bool(_PSEUDONYM.search(c)) for c in chosen),
        "other_speaker": sum(c in others_lines for c in chosen),
        "claims_alive": sum(bool(_CLAIMS_ALIVE.search(c)) for c in chosen),
        "empty": sum(not c.strip() for c in chosen),
        "fragments": sum(c not in whole and c != FALLBACK_LINE and profile.is_fragment(c) for c in chosen),
        "fallback": sum(c == FALLBACK_LINE for c in chosen),
    }
    return quality, safety


def _distinct(texts: list[str], n: int) -> float:
    """Distinct word n-grams over all word n-grams of the answers (distinct-1, distinct-2)."""
    grams = [tuple(w[i : i + n]) for w in (words(t) for t in texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _ending(text: str) -> str:
    hangul = [ch for ch in text if "\uac00" <= ch <= "\ud7a3"]
    return hangul[-1] if hangul else ""


def _ending_gap(chosen: list[str], real: list[str]) -> float:
    """Total-variation distance between the final-syllable distributions (요/어/지/다 ...)."""
    a, b = Counter(_ending(t) for t in chosen), Counter(_ending(t) for t in real)
    keys = set(a) | set(b)
    return 0.5 * sum(abs(a[k] / len(chosen) - b[k] / len(real)) for k in keys) if chosen and real else 0.0


def _share(texts: list[str], pattern: re.Pattern[str]) -> float:
    return float(np.mean([bool(pattern.search(t)) for t in texts])) if texts else 0.0


def scorecard(
    held_out: list[HeldOut],
    memory: list[HeldOut],
    embedder: Embedder,
    likelihood: Likelihood | None,
    k: int = 10,
    limit: int = 200,
    calibration: Calibration | None = None,
    generate: Callable[[list[Turn]], str] | None = None,
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
    card.answer, card.safety = answer_quality(held_out, memory, embedder, limit, calibration, generate)
    return card


@dataclass(frozen=True)
class GateTolerances:
    """How much worse than production a candidate may be and still move production."""

    selection: float = 0.05  # recall@1 and MRR, absolute
    contrastive: float = 0.01  # contrastive score of what chat says, absolute
    bland: float = 0.05  # bland share of what chat says, absolute


def compare(candidate: Scorecard, production: Scorecard, tolerances: GateTolerances) -> list[str]:
    """Every measure the candidate loses on (empty: not worse than production within tolerances)."""
    lost = []
    for name, mine in candidate.selection.items():
        theirs = production.selection.get(name)
        if theirs is None or not mine.n or not theirs.n:
            continue
        for measure in ("recall_at_1", "mrr"):
            a, b = getattr(mine, measure), getattr(theirs, measure)
            if a < b - tolerances.selection:
                lost.append(f"response selection ({name}) {measure} {a:.3f} < production {b:.3f}")
    a, b = candidate.answer.get("contrastive"), production.answer.get("contrastive")
    if a is not None and b is not None and a < b - tolerances.contrastive:
        lost.append(f"answer quality contrastive {a:.3f} < production {b:.3f}")
    a, b = candidate.answer.get("bland_share"), production.answer.get("bland_share")
    if a is not None and b is not None and a > b + tolerances.bland:
        lost.append(f"bland share {a:.3f} > production {b:.3f}")
    for name, count in candidate.safety.items():
        if count > 0 and count > production.safety.get(name, 0):
            lost.append(f"safety {name} {count} (must be 0)")
    return lost


def side_by_side(candidate: Scorecard, production: Scorecard, names: tuple[str, str]) -> str:
    """Two scorecards as one Markdown table (model card, UI artifact, CLI)."""
    lines = [f"| measure | {names[0]} | {names[1]} |", "|---|---|---|"]
    for name, mine in candidate.selection.items():
        theirs = production.selection.get(name)
        for measure in ("recall_at_1", "mrr"):
            other = f"{getattr(theirs, measure):.3f}" if theirs else "-"
            lines.append(f"| {name} {measure} | {getattr(mine, measure):.3f} | {other} |")
    for key, value in candidate.answer.items():
        value_there = production.answer.get(key)
        there = "-" if value_there is None else f"{value_there:.3f}"
        lines.append(f"| {key} | {value:.3f} | {there} |")
    for key, count in candidate.safety.items():
        lines.append(f"| safety {key} | {count} | {production.safety.get(key, '-')} |")
    return "\n".join(lines)


def card_from_dict(data: dict[str, Any]) -> Scorecard:
    """A scorecard back from its manifest form."""
    return Scorecard(
        {k: Selection(**v) for k, v in (data.get("selection") or {}).items()},
        dict(data.get("answer") or {}),
        dict(data.get("safety") or {}),
    )


def version_sessions(
    storage: Storage, manifest: dict[str, Any], held_out_dataset: int | None = None
) -> tuple[list[HeldOut], list[HeldOut]]:
    """A published text version's held-out sessions and its memory (its dataset's training pairs).

    `held_out_dataset` asks another dataset version's held-out sessions (to compare two versions on
    the same contexts).
    """
    owner_id, persona_id = manifest["owner_id"], manifest["persona"]
    dataset = int(manifest["dataset"]["version"])
    asked = f"datasets/{owner_id}/{persona_id}/v{held_out_dataset or dataset}"
    held_out = read_held_out(storage, f"{asked}/validation.parquet")
    return held_out, read_held_out(storage, f"datasets/{owner_id}/{persona_id}/v{dataset}/train.parquet")


def evaluate_persona(
    storage: Storage,
    owner_id: str,
    persona_id: str,
    version: str | int | None,
    embedder: Embedder,
    held_out_dataset: int | None = None,
) -> tuple[dict[str, Any], Scorecard]:
    """The scorecard of a published text version on its dataset's held-out sessions.

    `held_out_dataset` asks another dataset version's held-out sessions (to compare two versions on
    the same contexts); the memory is always the version's own training pairs.
    """
    from tasks.replies.chat import PersonaChat

    chat = PersonaChat(storage, owner_id, persona_id, version, mode="generate")
    chat.require_embedder(embedder)  # its threshold is in its own embedder's cosines
    dataset = int(chat.manifest["dataset"]["version"])
    held_out, memory = version_sessions(storage, chat.manifest, held_out_dataset)
    card = scorecard(
        held_out, memory, embedder, chat.likelihood, calibration=chat.calibration,
        generate=chat.say,
    )  # fmt: skip
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
