"""Context->reply pairs and raw conversations as fixed-length token tensors with loss masks.

A pair becomes `<bos> <other> ctx1 <persona> ctx2 ... <persona> reply <eos>`: each context turn
is prefixed by who spoke, the reply by `<persona>`. Fine-tuning learns only the reply tokens
(mask 1), so the model learns how the persona answers, not how others talk. Long contexts lose
their oldest turns first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenizers import Tokenizer

from models.tokenizer import BOS, EOS, MEMORY, OTHER, PAD, PERSONA, encode, special_id

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Turn:
    """One context turn."""

    text: str
    is_persona: bool


@dataclass
class Batchable:
    """Padded sequences and their loss masks, shape (n, block)."""

    ids: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class Encoder:
    """Turns conversations into model inputs with one tokenizer and block size."""

    def __init__(self, tokenizer: Tokenizer, block_size: int) -> None:
        """Remember the special ids once."""
        self.tokenizer = tokenizer
        self.block = block_size
        self.pad = special_id(tokenizer, PAD)
        self.bos = special_id(tokenizer, BOS)
        self.eos = special_id(tokenizer, EOS)
        self.persona = special_id(tokenizer, PERSONA)
        self.other = special_id(tokenizer, OTHER)
        self.memory = special_id(tokenizer, MEMORY)

    def prompt(
        self, context: Sequence[Turn], memories: Sequence[str] = (), budget: int | None = None
    ) -> list[int]:
        """`<bos>` + memories + context turns + `<persona>`, cut to the newest `budget` tokens."""
        budget = budget or self.block
        body: list[int] = []
        for memory in memories:
            body += [self.memory, *encode(self.tokenizer, memory)]
        for turn in context:
            body += [self.persona if turn.is_persona else self.other, *encode(self.tokenizer, turn.text)]
        body.append(self.persona)
        return [self.bos, *body[-(budget - 1) :]]

    def pair(self, context: Sequence[Turn], reply: str) -> tuple[list[int], list[int]]:
        """Ids and loss mask of one pair (mask on the reply and its end)."""
        answer = [*encode(self.tokenizer, reply)[: self.block // 2], self.eos]
        prompt = self.prompt(context, budget=self.block - len(answer))
        return prompt + answer, [0] * len(prompt) + [1] * len(answer)

    def conversation(self, turns: Sequence[Turn]) -> list[tuple[list[int], list[int]]]:
        """A whole conversation as block-sized chunks, every token learned (base pretraining)."""
        stream = [self.bos]
        for turn in turns:
            stream += [self.persona if turn.is_persona else self.other, *encode(self.tokenizer, turn.text)]
        stream.append(self.eos)
        chunks = []
        for start in range(0, max(1, len(stream) - 1), self.block):
            piece = stream[start : start + self.block]
            if len(piece) > 1:
                chunks.append((piece, [1] * len(piece)))
        return chunks

    def batchable(self, rows: Sequence[tuple[list[int], list[int]]]) -> Batchable:
        """Right-padded tensors; padding is never learned."""
        import torch  # here, not at the top: chat encodes prompts without loading torch

        ids = torch.full((len(rows), self.block), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), self.block), dtype=torch.float32)
        for i, (seq, m) in enumerate(rows):
            n = min(len(seq), self.block)
            ids[i, :n] = torch.tensor(seq[:n])
            mask[i, :n] = torch.tensor(m[:n], dtype=torch.float32)
        return Batchable(ids, mask)
