"""Morpheme-aware subwords (kiwipiepy + BPE): the alternative `bench/tokenizer.py` weighs.

Text is cut at Kiwi's morpheme boundaries on the surface string (`했어요` -> `했` `어요`: a
contracted syllable holding two morphemes stays whole, so decoding gives the text back exactly),
and a byte-level BPE learned on those pieces encodes each piece on its own: tokens never cross a
morpheme boundary, frequent morphemes become single tokens, anything else falls back to smaller
subwords and bytes. It offers the subset of `tokenizers.Tokenizer` that `models.data.Encoder`
and the evaluation use.

Not the default: on our data it loses to plain byte-level BPE on validation loss per character
(README, "Tokenizer"), and encoding needs the Kiwi analyser at inference time (~1 s to load).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from tokenizers import Tokenizer, models

from models.tokenizer import train_tokenizer


@dataclass(frozen=True)
class Encoding:
    """What `encode` returns (as `tokenizers.Encoding.ids`)."""

    ids: list[int]


class MorphemeTokenizer:
    """Kiwi segmentation, then a BPE (special tokens at 0..5) applied piece by piece."""

    def __init__(self, bpe: Tokenizer, kiwi: Any | None = None) -> None:
        """Wrap a BPE trained on morpheme pieces; `kiwi` is shared when given."""
        self.bpe = bpe
        self._kiwi = kiwi

    @property
    def kiwi(self) -> Any:
        """The Kiwi analyser, loaded on first use."""
        if self._kiwi is None:
            from kiwipiepy import Kiwi

            self._kiwi = Kiwi()
        return self._kiwi

    def segment(self, text: str) -> list[str]:
        """Surface pieces at morpheme boundaries; whitespace runs are pieces of their own."""
        if not text:
            return []
        cuts = {0, len(text)}
        for token in self.kiwi.tokenize(text):
            cuts.update((token.start, token.start + token.len))
        pieces: list[str] = []
        for start, end in pairwise(sorted(cuts)):
            chunk = text[start:end]
            # Kiwi skips whitespace: a chunk with spaces around a morpheme is cut at them.
            core = chunk.strip()
            if core and core != chunk:
                lead, trail = chunk[: len(chunk) - len(chunk.lstrip())], chunk[len(chunk.rstrip()) :]
                pieces += [p for p in (lead, core, trail) if p]
            else:
                pieces.append(chunk)
        return pieces

    def encode(self, text: str, add_special_tokens: bool = False) -> Encoding:
        """Ids of `text`, each morpheme piece encoded on its own."""
        ids: list[int] = []
        for piece in self.segment(text):
            ids += self.bpe.encode(piece, add_special_tokens=False).ids
        return Encoding(ids)

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Text of `ids` (byte-level decoding joins the pieces back exactly)."""
        return str(self.bpe.decode(ids, skip_special_tokens=skip_special_tokens))

    def token_to_id(self, token: str) -> int | None:
        """Id of a token."""
        value = self.bpe.token_to_id(token)
        return None if value is None else int(value)

    def get_vocab_size(self) -> int:
        """Size of the BPE vocabulary."""
        return int(self.bpe.get_vocab_size())

    def to_str(self) -> str:
        """JSON form (the BPE; Kiwi itself is a dependency, not data)."""
        return json.dumps({"type": "kiwi-morpheme-bpe", "bpe": self.bpe.to_str()}, ensure_ascii=False)

    @classmethod
    def from_str(cls, data: str) -> MorphemeTokenizer:
        """Inverse of `to_str`."""
        return cls(Tokenizer.from_str(json.loads(data)["bpe"]))


def train_morpheme_tokenizer(
    texts: Iterable[str], vocab_size: int = 2000, min_frequency: int = 2, kiwi: Any | None = None
) -> MorphemeTokenizer:
    """A BPE learned on the morpheme pieces of `texts` (each piece its own sequence: no merge crosses)."""
    probe = MorphemeTokenizer(Tokenizer(models.BPE()), kiwi)
    pieces = [piece for text in texts for piece in probe.segment(text)]
    return MorphemeTokenizer(train_tokenizer(pieces, vocab_size, min_frequency), probe.kiwi)
