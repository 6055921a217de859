"""Whether a candidate is better than production for the people who talk to it.

The conversation evaluation of a torch model at training time (the same ranker and measures as
`rememberme eval` over the published ONNX model), the reply-ranker calibration, and the gate that
joins the loss verdict with the conversation verdict.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.registry import Checkpoint
from infra.storage import Storage, StorageError
from infra.text_features import Embedder
from infra.versions import VersionError
from models.data import Encoder, Turn
from models.evaluate import torch_logits_fn
from models.lm import LanguageModel
from models.sampling import generate, reply_logprobs
from models.tokenizer import PAD, special_id
from tasks.replies.calibration import calibrate, calibration_under
from tasks.replies.ranker import Calibration, Likelihood, Memory
from tasks.training.conversation_eval import (
    GateTolerances,
    HeldOut,
    Scorecard,
    compare,
    scorecard,
    version_sessions,
)


@dataclass(frozen=True)
class EvalOptions:
    """How much of the held-out sessions the evaluation uses."""

    limit: int = 100  # held-out contexts scored and calibrated on
    probe: int = 16  # contexts the model generates for, to know what generation is worth
    seed: int = 0


def model_likelihood(model: LanguageModel, encoder: Encoder) -> Likelihood:
    """Mean log-probability per token of each reply after a context (as chat computes it with ORT)."""
    logits_fn = torch_logits_fn(model)
    return lambda context, replies: reply_logprobs(logits_fn, encoder, context, replies)


def model_generator(model: LanguageModel, encoder: Encoder, seed: int = 0) -> Callable[[list[Turn]], str]:
    """What the model says after a context (greedy-ish sampling, pseudonyms dropped as chat does)."""
    from tasks.replies.chat import clean_generated

    logits_fn = torch_logits_fn(model)
    banned = [special_id(encoder.tokenizer, PAD), encoder.bos, encoder.persona, encoder.other, encoder.memory]

    def say(context: list[Turn]) -> str:
        ids = generate(
            logits_fn, encoder.prompt(context, budget=model.config.block_size - 40), encoder.eos,
            model.config.block_size, max_new=40, seed=seed, banned=banned,
        )  # fmt: skip
        return clean_generated(encoder.tokenizer.decode(ids, skip_special_tokens=True))

    return say


def calibration_for(
    held_out: list[HeldOut],
    memory: list[HeldOut],
    embedder: Embedder,
    likelihood: Likelihood,
    say: Callable[[list[Turn]], str],
    options: EvalOptions,
) -> Calibration:
    """The reply ranker's calibration of a model (`likelihood`, `say`) on the held-out sessions."""
    items = held_out[: options.limit]
    bank = Memory.build([(m.context, m.reply, m.parts) for m in memory], embedder)
    pairs = [(i.context, i.reply) for i in items]
    return calibrate(pairs, bank, embedder, likelihood, say, options.limit, options.probe)


def evaluate_version(
    model: LanguageModel,
    encoder: Encoder,
    held_out: list[HeldOut],
    memory: list[HeldOut],
    embedder: Embedder,
    options: EvalOptions,
    calibration: Calibration | None = None,
) -> tuple[Calibration, Scorecard]:
    """Calibrate the reply ranker on the held-out sessions (unless given) and score the version."""
    likelihood, say = model_likelihood(model, encoder), model_generator(model, encoder, options.seed)
    items = held_out[: options.limit]
    if calibration is None:
        calibration = calibration_for(items, memory, embedder, likelihood, say, options)
    card = scorecard(items, memory, embedder, likelihood, limit=options.limit, calibration=calibration,
                     generate=say)  # fmt: skip
    return calibration, card


def production_scorecard(
    storage: Storage,
    current: Checkpoint,
    model: LanguageModel,
    encoder: Encoder,
    held_out: list[HeldOut],
    memory: list[HeldOut],
    embedder: Embedder,
    options: EvalOptions,
) -> Scorecard:
    """Production's scorecard on the candidate's held-out contexts, with its own memory and calibration."""
    theirs_memory = memory
    # Its dataset may be forgotten (or half deleted): the candidate's memory then.
    with contextlib.suppress(StorageError, OSError, VersionError):
        theirs_memory = version_sessions(storage, current.manifest)[1]
    # As it serves under this embedder; recalibrated here when it has no calibration for it.
    calibration = calibration_under(storage, current.manifest, embedder)
    _, theirs = evaluate_version(model, encoder, held_out, theirs_memory, embedder, options, calibration)
    return theirs


def gate(
    decision: dict[str, Any], card: Scorecard, theirs: Scorecard, tolerances: GateTolerances
) -> dict[str, Any]:
    """The loss verdict joined with the conversation verdict: production moves only if neither loses."""
    lost = compare(card, theirs, tolerances)
    if not decision["promote"]:
        lost.insert(0, f"validation nats/char {decision['new_nats_per_char']:.4f} > production "
                       f"{decision['current_nats_per_char']:.4f}")  # fmt: skip
    out = {**decision, "lost_on": lost, "production_scorecard": theirs.to_dict()}
    if lost and decision["promote"]:
        out["promote"] = False
        out["reason"] = (
            f"worse than production v{decision['current_version']} on what users feel: {'; '.join(lost)}: "
            "published as a candidate"
        )
    return out
