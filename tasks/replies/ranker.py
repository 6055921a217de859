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
the weights are calibrated per persona on held-out sessions (tasks/replies/calibration.py).
Hubs never win by being close to everything: a line the persona says to anything ("허허", "그래?",
tasks/replies/blandness.py) is said only to small talk (the persona's nearest answered messages
were mostly answered that way) or to a message it answered almost word for word; and a burst is
said whole or as one of its whole messages, never as a piece of one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from infra.text_features import Embedder
from models.data import Turn
from schemas.search import BUNDLED_EMBEDDER
from tasks.replies.blandness import ReplyProfile

CONTEXT_TURNS = 3
DEFAULT_THRESHOLD = 0.86
#: A stored message this close to the user's is the same message (the bundled encoder's cosines).
SMALL_TALK_SIMILARITY = 0.95
#: Of the answered messages nearest the user's, this share answered blandly makes it small talk.
SMALL_TALK_SHARE = 0.6
#: Thresholds are searched up to the top of this range, from the persona's own "unrelated" cosine
#: (tasks/replies/calibration.py); the bottom is used where a memory is too small to tell.
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
    #: Held-out contexts whose message occurs word for word in the memory: calibrated with those
    #: twins left out, so the threshold is learnt on messages the persona never answered.
    held_out_verbatim: int = 0
    #: What the weights and threshold maximise (older versions: "similarity", which rewards hubs).
    objective: str = "similarity"
    small_talk_similarity: float = SMALL_TALK_SIMILARITY
    #: The persona's reply profile as hashes (tasks/replies/blandness.py); empty for older versions.
    bland_lines: tuple[str, ...] = ()
    filler_words: tuple[str, ...] = ()
    lexicon: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The numbers, without the profile's hashes (logs, CLI, UI)."""
        data = self.to_dict()
        for name in ("bland_lines", "filler_words", "lexicon"):
            data[name] = len(data[name])
        return data

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Calibration:
        """The calibration a model was published with (the defaults for older models)."""
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in (manifest.get("chat") or {}).items() if k in known}
        for name in ("bland_lines", "filler_words", "lexicon"):
            if name in values:
                values[name] = tuple(values[name] or ())
        return cls(**values)

    @cached_property
    def profile(self) -> ReplyProfile:
        """The persona's bland lines, filler and words, for lookups."""
        return ReplyProfile(
            frozenset(self.bland_lines), frozenset(self.filler_words), frozenset(self.lexicon)
        )

    def with_profile(self, profile: ReplyProfile) -> Calibration:
        """The same calibration carrying `profile`."""
        lists = profile.to_lists()
        return replace(
            self,
            bland_lines=tuple(lists["bland_lines"]),
            filler_words=tuple(lists["filler_words"]),
            lexicon=tuple(lists["lexicon"]),
        )

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


def reply_variants(reply: str, parts: Sequence[str] | None = None) -> list[str]:
    """What may be said of a stored reply: the whole burst, and each of its whole messages alone.

    A reply is often a burst of several messages (`밥은 먹었니?`, `사랑해 우리 딸`, `반찬 더 필요하면
    말해`); the one message that answers what was said is still the persona's own words, and the
    ranker can pick it instead of the whole burst. `parts` are the burst's messages as the dataset
    keeps them: a message of several lines stays whole. Without them (a dataset built before they
    were kept) only the whole burst is said, never a line that may be a piece of a message.
    """
    whole = [p.strip() for p in parts or () if p.strip()]
    return [reply] if len(whole) < 2 else [reply, *(p for p in dict.fromkeys(whole) if p != reply)]


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


def small_talk(candidates: Sequence[Candidate], profile: ReplyProfile, nearest: int = 5) -> bool:
    """Whether the persona answered the messages nearest the user's mostly with bland lines."""
    texts = list(dict.fromkeys(c.text for c in sorted(candidates, key=lambda c: -c.context_similarity)))
    top = texts[:nearest]
    return bool(top) and sum(profile.is_bland(t) for t in top) >= SMALL_TALK_SHARE * len(top)


def sayable(candidates: Sequence[Candidate], calibration: Calibration) -> list[bool]:
    """Which candidates may be said at all: no pseudonym, not empty, and bland only where it fits.

    A bland line fits small talk, or a message the persona answered with it almost word for word.
    Small talk is answered with one short message: not a burst of lines about other things.
    """
    profile = calibration.profile
    chatter = small_talk(candidates, profile)
    short = chatter and any("\n" not in c.text.strip() for c in candidates)
    return [
        bool(c.text.strip())
        and not PSEUDONYM.search(c.text)
        and (not short or "\n" not in c.text.strip())
        and (
            chatter
            or c.context_similarity >= calibration.small_talk_similarity
            or not profile.is_bland(c.text)
        )
        for c in candidates
    ]


def usable_generated(
    texts: Sequence[str], candidates: Sequence[Candidate], calibration: Calibration
) -> list[str]:
    """Generated texts that may be said: whole utterances; bland, and one line, only to small talk."""
    profile = calibration.profile
    chatter = small_talk(candidates, profile)
    return [
        t
        for t in texts
        if t.strip()
        and not profile.is_fragment(t)
        and ("\n" not in t.strip() if chatter else not profile.is_bland(t))
    ]


def ranking(candidates: Sequence[Candidate], calibration: Calibration) -> list[int]:
    """The sayable candidates' indices, best first (whatever their context's fit)."""
    ranked = scores(candidates, calibration)
    ok = sayable(candidates, calibration)
    return sorted((i for i in range(len(candidates)) if ok[i]), key=lambda i: (-float(ranked[i]), i))


def choose(
    candidates: Sequence[Candidate], calibration: Calibration, threshold: float | None = None
) -> int | None:
    """The index of the reply to say, or None when no real reply fits what was said.

    `threshold` overrides the calibration's (None: the calibrated one; -inf: the best sayable reply).
    """
    floor = calibration.threshold if threshold is None else threshold
    return next(
        (i for i in ranking(candidates, calibration) if candidates[i].context_similarity >= floor), None
    )


@dataclass
class Decision:
    """What hybrid says: a real reply (`index`), generated texts that may be said, or the fallback."""

    kind: str  # "retrieved" | "generated" | "fallback"
    index: int | None = None
    generated: list[str] = field(default_factory=list)


def decide(
    candidates: Sequence[Candidate], calibration: Calibration, generate: Callable[[], list[str]] | None
) -> Decision:
    """What hybrid says, in its order (chat and the scorecard alike).

    A real reply that fits; small talk in the persona's own words; a usable generated text
    (`generate` is asked only then); the nearest sayable real reply however loosely it fits; the
    fallback line only when memory and generation both have nothing.
    """
    pick = choose(candidates, calibration)
    if pick is not None:
        return Decision("retrieved", pick)
    nearest = choose(candidates, calibration, -np.inf)
    if nearest is not None and small_talk(candidates, calibration.profile):
        return Decision("retrieved", nearest)
    usable = usable_generated(generate(), candidates, calibration) if generate is not None else []
    if usable:
        return Decision("generated", generated=usable)
    return Decision("fallback") if nearest is None else Decision("retrieved", nearest)


#: A memory pair: the conversation before, the reply, and the reply's whole messages (may be empty).
Pair = tuple[list[Turn], str, Sequence[str]]


@dataclass
class Memory:
    """A persona's context->reply pairs with their vectors, searched in memory (eval, calibration)."""

    contexts: list[list[Turn]]
    replies: list[str]
    message_vectors: np.ndarray
    conversation_vectors: np.ndarray
    reply_vectors: np.ndarray
    #: The user's message each entry answered (for leaving a held-out message's twins out).
    answered: list[str] = field(default_factory=list)
    #: Every pair as (answered message, reply, whole messages): what the reply profile reads.
    sources: list[tuple[str, str, Sequence[str]]] = field(default_factory=list)

    @classmethod
    def build(cls, pairs: Sequence[Pair], embedder: Embedder) -> Memory:
        """Embed each pair as the index does (tasks/indexing/indexer.py)."""
        kept = [(c, r, p) for c, r, p in pairs if c and r.strip()]
        usable = [(c, v) for c, r, p in kept for v in reply_variants(r, p)]
        contexts, replies = [c for c, _ in usable], [r for _, r in usable]
        answered = [last_message(c) for c in contexts]
        return cls(
            contexts,
            replies,
            embedder.queries(answered),
            embedder.queries([conversation_text(c) for c in contexts]),
            embedder.passages(replies),
            answered,
            [(last_message(c), r, tuple(p)) for c, r, p in kept],
        )

    def candidates(
        self,
        context: Sequence[Turn],
        embedder: Embedder,
        size: int = 20,
        exclude: str | None = None,
        unseen: bool = False,
    ) -> list[Candidate]:
        """The `size` pairs whose answered message is most like the user's (plus reply relevance).

        `unseen` leaves out the pairs that answered the user's very message, as if the persona had
        never been told it: how a paraphrase is answered.
        """
        if not self.replies:
            return []
        said = last_message(context)
        message = embedder.query(said)
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
            if reply in seen or reply == exclude or (unseen and self.answered[i].strip() == said.strip()):
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
