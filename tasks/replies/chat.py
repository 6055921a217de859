"""Talk to a published persona: retrieval of their real replies, generation with onnxruntime, or both.

Modes (the default, `hybrid`, is the one the evaluation shows answers best: bench/relevance.py):
- `retrieve`: the persona's own context->reply pairs found for the recent conversation, re-ranked
  by relevance (tasks/replies/ranker.py: the message they answered, the conversation before it, the
  reply itself, the persona model) with the persona's calibrated threshold; when no real reply
  fits, a gentle fallback line.
- `generate`: the fine-tuned model, prompted with retrieved memories and the conversation (of
  three samples, the first that is a whole utterance and not bland unless the user made small talk).
- `hybrid`: `retrieve`'s choice when a real reply fits; small talk in her own words (the nearest
  real message, however loosely it fits); otherwise generated candidates ranked by the persona
  model, less those that are fragments or bland; otherwise the persona's nearest real reply
  however loosely it fits. The fallback line only when memory and generation both have nothing.
  A generated text never wins over a real reply that fits.

Guardrail (system side, not left to the model): the first reply of a conversation carries a
notice that this is an AI made from messages someone left, and questions about the present
(where are you now, are you alive, today's news/date/weather) get an honest line instead of an
answer in the person's voice; a generated text that claims to be alive or real is replaced too.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch
from tokenizers import Tokenizer

from infra.errors import EmbedderError, SearchError
from infra.indices import check_embedder
from infra.registry import Registry
from infra.search_pairs import search_pairs
from infra.storage import Storage
from infra.text_features import Embedder
from models.data import Encoder, Turn
from models.sampling import generate, reply_logprobs
from models.tokenizer import PAD, special_id
from schemas.search import BUNDLED_EMBEDDER, PAIRS_ALIAS
from tasks.replies.calibration import calibration_under
from tasks.replies.ranker import (
    Calibration,
    Candidate,
    choose,
    conversation_text,
    decide,
    last_message,
    usable_generated,
)

MODES = ("retrieve", "generate", "hybrid")
NOTICE = (
    "[안내] 이 대화 상대는 고인이 남긴 메시지로 만든 AI입니다. 실제 인물이 아니며, 지금의 일은 알지 못합니다."
)
PRESENT_DAY_LINE = (
    "나는 남겨진 대화로 만들어진 기억이라서, 지금의 일은 알 수가 없어. 대신 우리 이야기를 해 줄래?"
)
FALLBACK_LINE = "음... 그건 잘 기억이 안 나네. 다른 이야기 해 줄래?"
_PRESENT_DAY = re.compile(
    r"(지금\s*(어디|뭐\s*해|살아)|살아\s*(있|계)|진짜\s*(엄마|아빠|할머니|할아버지|너)\s*(야|니|맞)|"
    r"오늘\s*(며칠|날짜|뉴스|날씨)|요즘\s*뉴스|현재|대통령|are you (alive|real)|where are you now)",
    re.IGNORECASE,
)
#: Pseudonyms the datasets put in place of personal data: never said back to a user.
_PLACEHOLDER = re.compile(r"\s*<(?:phone|rrn|card|account|email|address|url)(?:_\d+)?>\s*")
#: Any trace of a pseudonym, also one the model began and did not close (`<phone_`).
_PLACEHOLDER_TRACE = re.compile(r"<\s*(?:phone|rrn|card|account|email|address|url)(?![a-z])", re.IGNORECASE)
_CLAIMS_ALIVE = re.compile(r"(나\s*(아직\s*)?살아\s*있|진짜\s*(엄마|아빠|나)\s*야|죽지\s*않았)")


def clean_generated(text: str) -> str:
    """A generated text as it may be shown: pseudonyms and broken characters removed."""
    # Byte-level sampling can stop inside a multi-byte character: never show U+FFFD.
    text = _PLACEHOLDER.sub(" ", text).replace("\ufffd", "").strip()
    if _PLACEHOLDER_TRACE.search(text):  # an unclosed `<phone_`: drop it
        return ""
    # A small model loops: the same line twice in one reply is never how anyone writes.
    lines = dict.fromkeys(line.strip() for line in text.split("\n") if line.strip())
    return "\n".join(lines)


@dataclass
class Reply:
    """One answer and where it came from."""

    text: str
    mode: str  # "retrieved" | "generated" | "guardrail" | "fallback"
    score: float | None = None
    notice: str | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def render(self) -> str:
        """What the user sees."""
        return f"{self.notice}\n{self.text}" if self.notice else self.text


class PersonaChat:
    """A loaded persona version (onnxruntime) plus its retrieval memory."""

    #: How often a conversation confirms the memory still holds its embedder's vectors.
    INDEX_RECHECK_S = 60.0
    _index_checked = 0.0

    def __init__(
        self,
        storage: Storage,
        owner_id: str,
        persona_id: str,
        version: str | int | None = None,
        client: Elasticsearch | None = None,
        embedder: Embedder | None = None,
        mode: str = "hybrid",
        threshold: float | None = None,
        temperature: float = 0.8,
        top_p: float = 0.9,
        seed: int = 0,
    ) -> None:
        """Load the production (or given) version; verify its files; open an ORT session.

        `threshold` overrides the persona's calibrated one (kept in the model's manifest).
        """
        import onnxruntime as ort

        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        checkpoint = Registry(storage).load(owner_id, persona_id, "text", version)
        self.manifest = checkpoint.manifest
        self.version = checkpoint.version
        self.owner_id, self.persona_id = owner_id, persona_id
        # Our GPT and a wrapped Hugging Face model both store their context window here.
        self.block_size = int(json.loads(checkpoint.files["config.json"])["block_size"])
        self.tokenizer = Tokenizer.from_str(checkpoint.files["tokenizer.json"].decode())
        self.encoder = Encoder(self.tokenizer, self.block_size)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            checkpoint.files["model.onnx"], options, providers=["CPUExecutionProvider"]
        )
        self.storage, self.client, self.embedder = storage, client, embedder
        self.calibration = Calibration.from_manifest(self.manifest)
        if embedder is not None and mode != "generate":
            self.require_embedder(embedder)
        if threshold is not None:
            self.calibration = replace(self.calibration, threshold=threshold)
        self.mode, self.threshold = mode, self.calibration.threshold
        self.temperature, self.top_p, self.seed = temperature, top_p, seed
        self.history: list[Turn] = []
        self._banned = [
            special_id(self.tokenizer, PAD),
            self.encoder.bos,
            self.encoder.persona,
            self.encoder.other,
            self.encoder.memory,
        ]

    def require_embedder(self, embedder: Embedder) -> None:
        """Rank with `embedder`'s calibration of this version, or refuse (cosines would not compare).

        The version's own calibration is its training embedder's; another embedder's is the one
        `rememberme index --switch-embedder` stored beside the version (tasks/training/recalibration.py).
        """
        calibration = calibration_under(self.storage, self.manifest, embedder)
        if calibration is None:
            made = self.calibration.embedder or BUNDLED_EMBEDDER
            raise EmbedderError(
                f"persona {self.persona_id} v{self.version}: its replies were calibrated with embedder "
                f"{made}, this process embeds with {embedder.name}; recalibrate it (rememberme index "
                "--switch-embedder), retrain it, or set REMEMBERME_EMBEDDER_MODEL to the embedder it "
                "was trained with"
            )
        self.calibration = calibration
        if self.client is not None:
            check_embedder(self.client, PAIRS_ALIAS, embedder)
            self._index_checked = time.monotonic()

    def _logits(self, ids: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(["logits"], {"input_ids": ids})
        result: np.ndarray = out
        return result

    def _retrieve(self, context: list[Turn], size: int = 20) -> list[dict[str, Any]]:
        if self.client is None or self.embedder is None:
            return []
        if time.monotonic() - self._index_checked > self.INDEX_RECHECK_S:
            # A long conversation outlives an operator's embedder switch: it stops, in one line,
            # rather than compare its vectors with another embedder's.
            check_embedder(self.client, PAIRS_ALIAS, self.embedder)
            self._index_checked = time.monotonic()
        message = last_message(context)
        conversation = conversation_text(context) if len(context) > 1 else None
        try:
            return search_pairs(
                self.client, PAIRS_ALIAS, self.owner_id, self.persona_id, message,
                self.embedder.query(message),
                self.embedder.query(conversation) if conversation else None,
                size,
            )  # fmt: skip
        except SearchError:
            return []

    def _generate(self, context: list[Turn], memories: list[str], seed: int) -> str:
        prompt = self.encoder.prompt(context, memories, budget=self.block_size - 40)
        ids = generate(
            self._logits, prompt, self.encoder.eos, self.block_size,
            max_new=40, temperature=self.temperature, top_p=self.top_p, seed=seed, banned=self._banned,
        )  # fmt: skip
        return clean_generated(str(self.tokenizer.decode(ids, skip_special_tokens=True)))

    def say(self, context: list[Turn]) -> str:
        """What the model alone generates after a context (no memories): the evaluation's fallback."""
        return self._generate(context, [], self.seed)

    def likelihood(self, context: list[Turn], replies: list[str]) -> list[float]:
        """Mean log-probability per token of each reply after `context` under the persona model."""
        return reply_logprobs(self._logits, self.encoder, context, replies)

    def reply(self, message: str) -> Reply:
        """Answer one user message (the conversation so far is remembered)."""
        notice = NOTICE if not self.history else None
        context = [*self.history, Turn(message, False)]
        if _PRESENT_DAY.search(message):
            answer = Reply(PRESENT_DAY_LINE, "guardrail", notice=notice)
        else:
            answer = self._answer(message, context)
            answer.notice = notice
            if _CLAIMS_ALIVE.search(answer.text):
                answer = Reply(PRESENT_DAY_LINE, "guardrail", notice=notice)
            elif _PLACEHOLDER_TRACE.search(answer.text):  # the last guard, whatever the mode
                answer = Reply(FALLBACK_LINE, "fallback", notice=notice)
        self.history = [*context, Turn(answer.text, True)][-12:]
        return answer

    def _answer(self, message: str, context: list[Turn]) -> Reply:
        hits = self._retrieve(context)
        seed = self.seed + len(self.history)
        real = [
            Candidate(
                h["reply"],
                h["similarity"] if h.get("similarity") is not None else -1.0,
                h.get("reply_relevance") or 0.0,
                h.get("conversation_similarity"),
            )
            for h in hits
        ]
        if self.mode != "generate" and self.calibration.likelihood_weight:
            for candidate, value in zip(real, self.likelihood(context, [c.text for c in real]), strict=True):
                candidate.likelihood = value
        pick = choose(real, self.calibration) if self.mode != "generate" else None
        shown = [
            {"text": c.text, "source": c.source, "similarity": c.context_similarity,
             "reply_relevance": c.reply_relevance, "likelihood": c.likelihood}
            for c in real[:5]
        ]  # fmt: skip
        if pick is not None:  # a real reply that fits: said as it was written
            chosen = real[pick]
            return Reply(chosen.text, "retrieved", chosen.context_similarity, candidates=shown)
        if self.mode == "retrieve":
            best = max((c.context_similarity for c in real), default=None)
            return Reply(FALLBACK_LINE, "fallback", best, candidates=shown)
        memories = [c.text for c in real[:2] if not _PLACEHOLDER_TRACE.search(c.text)]
        if self.mode == "generate":  # the first whole, fitting sample of three; else the first at all
            first = ""
            for k in range(3):
                text = self._generate(context, memories, seed * 7 + k)
                first = first or text
                if usable_generated([text], real, self.calibration):
                    return Reply(text, "generated")
            return Reply(first, "generated")
        decision = decide(
            real,
            self.calibration,
            lambda: [self._generate(context, memories, seed * 7 + k) for k in range(3)],
        )
        if decision.index is not None:
            chosen = real[decision.index]
            return Reply(chosen.text, "retrieved", chosen.context_similarity, candidates=shown)
        if decision.generated:
            usable = decision.generated
            generated: list[dict[str, Any]] = [
                {"text": text, "source": "generated", "likelihood": value}
                for text, value in zip(usable, self.likelihood(context, usable), strict=True)
            ]
            top = max(generated, key=lambda c: float(c["likelihood"]))
            score = float(top["likelihood"])
            return Reply(str(top["text"]), "generated", score, candidates=shown + generated)
        return Reply(FALLBACK_LINE, "fallback", candidates=shown)
