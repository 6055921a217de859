"""What a persona says to anything, and what is not a whole utterance, read from the persona's own data.

- A *bland* line is one the persona says after many unrelated messages ("허허", "그래?", "응"): the
  messages it answered fall into at least `SPREAD` groups of mutually unrelated messages (leader
  clustering at the cosine that only the closest tenth of random message pairs reach), or every
  word of it is a word of such lines or carries no letter ("그래", "ㅋㅋ", an emoji). No word list:
  a persona whose filler is "그래그래" and one whose filler is "오냐" are each read from their chats.
- A *fragment* is text that is not a whole utterance: a line whose first or last word the persona
  never wrote as a word (generation that starts or stops mid-word: "냈구나" of "해냈구나"), or a
  piece of a stored message.

Kept in the calibration as short hashes of the persona's own lines and words (a manifest holds no
text, and nothing of the people they talked with), so chat, the evaluation and the gate apply the
same definition.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from infra.text_features import Embedder

#: Groups of unrelated answered messages from which a line counts as said to anything.
SPREAD = 4
#: Random pairs of answered messages sampled to find what "related" means for this persona.
SAMPLED_PAIRS = 20_000
_LETTER = re.compile(r"[0-9A-Za-z\u00c0-\u024f\uac00-\ud7a3\u3040-\u30ff\u4e00-\u9fff]")
_EDGE = re.compile(r"^[^\w\uac00-\ud7a3]+|[^\w\uac00-\ud7a3]+$")


def words(text: str) -> list[str]:
    """The words of a text, punctuation trimmed from their edges ("그래?" -> "그래")."""
    return [w for w in (_EDGE.sub("", raw) for raw in text.split()) if w]


def has_letters(word: str) -> bool:
    """Whether a word carries a syllable, letter or digit (not "ㅋㅋ", "ㅠㅠ", an emoji)."""
    return bool(_LETTER.search(word))


def digest(text: str) -> str:
    """The short hash a profile keeps of a line or a word."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:10]


def lines_of(text: str) -> list[str]:
    """The non-empty lines of a reply."""
    return [line.strip() for line in text.split("\n") if line.strip()]


@dataclass(frozen=True)
class ReplyProfile:
    """A persona's bland lines, filler words and word list (hashes), from their own pairs."""

    bland_lines: frozenset[str] = frozenset()
    filler_words: frozenset[str] = frozenset()
    lexicon: frozenset[str] = frozenset()
    _memo: dict[str, bool] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def build(
        cls, pairs: Iterable[tuple[str, str, Sequence[str]]], embedder: Embedder, seed: int = 0
    ) -> ReplyProfile:
        """From (answered message, reply, reply's whole messages) triples of the persona's memory."""
        answered: dict[str, set[str]] = defaultdict(set)
        lexicon: set[str] = set()
        for message, reply, parts in pairs:
            for line in parts or lines_of(reply):
                answered[line.strip()].add(message)
            lexicon.update(digest(w) for w in words(reply))  # the persona's own words only
        spread = [line for line, messages in answered.items() if len(messages) >= SPREAD]
        bland: set[str] = set()
        if spread:
            messages = sorted({m for line in spread for m in answered[line]} | _sample(answered, seed))
            vectors = dict(zip(messages, embedder.queries(messages), strict=True))
            related = _related_cosine(np.stack(list(vectors.values())), seed)
            for line in spread:
                if _groups([vectors[m] for m in sorted(answered[line])], related) >= SPREAD:
                    bland.add(line)
        filler = {digest(w) for line in bland for w in words(line)}
        return cls(frozenset(digest(line) for line in bland), frozenset(filler), frozenset(lexicon))

    def is_bland(self, text: str) -> bool:
        """Whether every line of `text` is one the persona says to anything, or carries no content word."""
        known = self._memo.get(text)
        if known is None:
            known = all(self._bland_line(line) for line in lines_of(text)) if text.strip() else True
            if len(self._memo) < 100_000:  # rankers ask the same candidates again and again
                self._memo[text] = known
        return known

    def _bland_line(self, line: str) -> bool:
        if digest(line) in self.bland_lines:
            return True
        return all(digest(w) in self.filler_words or not has_letters(w) for w in words(line))

    def is_fragment(self, text: str) -> bool:
        """Whether a line of `text` starts or ends with a word the persona never wrote.

        Unknown (an older calibration without a word list): not a fragment.
        """
        if not self.lexicon:
            return False
        for line in lines_of(text):
            found = [w for w in words(line) if has_letters(w)]
            if found and (digest(found[0]) not in self.lexicon or digest(found[-1]) not in self.lexicon):
                return True
        return False

    def to_lists(self) -> dict[str, list[str]]:
        """JSON-ready (sorted, so a manifest is stable)."""
        return {
            "bland_lines": sorted(self.bland_lines),
            "filler_words": sorted(self.filler_words),
            "lexicon": sorted(self.lexicon),
        }


def _sample(answered: dict[str, set[str]], seed: int, size: int = 2000) -> set[str]:
    """Answered messages beyond the spread lines' own: what unrelated messages look like."""
    everything = sorted({m for messages in answered.values() for m in messages})
    return set(random.Random(seed).sample(everything, min(size, len(everything))))


def _related_cosine(vectors: np.ndarray, seed: int) -> float:
    """The cosine only the closest tenth of random pairs of answered messages reach."""
    n = len(vectors)
    if n < 3:
        return 1.0
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, SAMPLED_PAIRS), rng.integers(0, n, SAMPLED_PAIRS)
    keep = a != b
    cosines = np.einsum("ij,ij->i", vectors[a[keep]], vectors[b[keep]])
    return float(np.percentile(cosines, 90))


def _groups(vectors: list[np.ndarray], related: float) -> int:
    """Leader clustering: how many groups of mutually related messages `vectors` fall into."""
    leaders: list[np.ndarray] = []
    for vector in vectors:
        if not any(float(leader @ vector) > related for leader in leaders):
            leaders.append(vector)
    return len(leaders)
