"""Byte-level BPE trained on our own corpus (HF `tokenizers`, Rust; trains in about a second).

Why byte-level BPE: every Korean syllable, emoji and typo is representable (no unknown token),
and frequent endings (`~요`, `했어`, `ㅋㅋㅋ`) become single tokens, which is what a persona's style
is made of. `bench/tokenizer.py` compares vocabulary sizes by validation loss per character.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD: Final = "<pad>"
BOS: Final = "<bos>"
EOS: Final = "<eos>"
#: Turn markers: who speaks next in a context, and where the reply starts.
PERSONA: Final = "<persona>"
OTHER: Final = "<other>"
MEMORY: Final = "<memory>"
SPECIALS: Final = (PAD, BOS, EOS, PERSONA, OTHER, MEMORY)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2000, min_frequency: int = 2) -> Tokenizer:
    """A byte-level BPE tokenizer with our special tokens at ids 0..5."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def special_id(tokenizer: Tokenizer, token: str) -> int:
    """The id of a special token (present in every tokenizer trained here)."""
    value = tokenizer.token_to_id(token)
    if value is None:
        raise ValueError(f"tokenizer has no {token} token")
    return int(value)


def encode(tokenizer: Tokenizer, text: str) -> list[int]:
    """Token ids of plain text (no special tokens)."""
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def decode(tokenizer: Tokenizer, ids: list[int]) -> str:
    """Text of token ids, special tokens dropped."""
    return str(tokenizer.decode(ids, skip_special_tokens=True))
