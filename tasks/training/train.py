"""Train, evaluate, export and publish a persona's text model (the shared base: tasks/training/base_model.py).

persona: dataset version -> (newest base: its tokenizer and weights | a tokenizer of its own) ->
fine-tune on context->reply pairs (reply tokens learned) -> metrics (validation loss and
perplexity, discrimination, style of sampled replies) -> ONNX + parity (a failure stops here) ->
conversation evaluation and reply-ranker calibration on the held-out sessions (tasks/training/promotion.py)
-> publish `models/{owner}/{persona}/text/v{n}` -> `production` only when not worse than the
current production on the same validation pairs (nats per character, so different tokenizers
compare) nor on what users feel (response selection, answer quality, safety).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pyarrow.parquet as pq
import torch
from tokenizers import Tokenizer

from infra.faults import fault_point
from infra.registry import Registry, RegistryError
from infra.storage import Storage
from infra.text_features import Embedder, default_embedder
from infra.version import CODE_VERSION
from infra.versions import read_verified
from models.data import Batchable, Encoder, Turn
from models.errors import ParityError
from models.evaluate import (
    perplexity,
    sequence_scores,
    style_gap,
    style_stats,
    torch_logits_fn,
)
from models.export import check_parity, export_onnx
from models.gpt import GPT, GPTConfig
from models.hf import HFCausalLM
from models.lm import LanguageModel, model_from_config
from models.lora import apply_lora, merge_lora
from models.sampling import generate
from models.tokenizer import PAD, special_id, train_tokenizer
from models.train import TrainConfig, evaluate_loss, pick_device, train
from parsers.errors import InputError
from tasks.training.conversation_eval import GateTolerances, HeldOut, read_held_out
from tasks.training.promotion import EvalOptions, evaluate_version, gate, production_scorecard

BASE_OWNER, BASE_PERSONA = "platform", "base"
AUTO_LORA_RANK = 8

Pair = tuple[list[Turn], str]


@dataclass(frozen=True)
class ModelOptions:
    """What shapes a persona model; recorded in its manifest."""

    train: TrainConfig = field(default_factory=TrainConfig)
    vocab_size: int = 2000
    block_size: int = 128
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 128
    promote_tolerance: float = 0.02  # production moves if new <= current * (1 + tolerance)
    # LoRA adapters (merged before export) instead of a full fine-tune of the base. None: rank
    # AUTO_LORA_RANK for an imported pretrained base (large: full fine-tunes are slow and forget),
    # full for our own small base; 0: always full; > 0: that rank whenever there is a base.
    lora_rank: int | None = None
    pretrained_lr: float = 3e-4  # learning-rate cap for a full fine-tune of an imported pretrained base
    style_samples: int = 16
    gate: GateTolerances = field(default_factory=GateTolerances)
    eval_limit: int = 100  # held-out contexts the conversation evaluation and calibration use

    def gpt(self, vocab_size: int) -> GPTConfig:
        """The model shape for a vocabulary."""
        return GPTConfig(vocab_size, self.block_size, self.n_layer, self.n_head, self.d_model)


def read_pairs(storage: Storage, key: str) -> list[Pair]:
    """Context->reply pairs of one dataset split."""
    table = pq.read_table(io.BytesIO(read_verified(storage, key)), columns=["context", "reply"])
    return [
        ([Turn(t["text"], bool(t["is_persona"])) for t in row["context"]], row["reply"])
        for row in table.to_pylist()
    ]


def other_turns(pairs: list[Pair]) -> list[Pair]:
    """Other speakers' turns as if they were replies (the contrast set of discrimination)."""
    out = []
    for context, _ in pairs:
        for i, turn in enumerate(context):
            if not turn.is_persona and i > 0:
                out.append((context[:i], turn.text))
    return out


def nats_per_char(model: LanguageModel, encoder: Encoder, pairs: list[Pair]) -> float:
    """Reply loss normalised by characters: comparable across tokenizers."""
    data = encoder.batchable([encoder.pair(c, r) for c, r in pairs])
    tokens = float(data.mask[:, 1:].sum())
    loss = evaluate_loss(model, data, torch.device("cpu"))
    chars = sum(len(r) + 1 for _, r in pairs)
    return loss * tokens / max(chars, 1)


def pairwise_accuracy(model: LanguageModel, mine: Batchable, theirs: Batchable, limit: int = 300) -> float:
    """Share of (persona reply, other turn) pairs where the model prefers the persona's."""
    if not len(mine) or not len(theirs):
        return float("nan")
    a = sequence_scores(model, mine)[:limit]
    b = sequence_scores(model, theirs)[:limit]
    return float((a.unsqueeze(1) > b.unsqueeze(0)).float().mean())


def _load_model(files: dict[str, bytes]) -> tuple[LanguageModel, Tokenizer]:
    model = model_from_config(json.loads(files["config.json"]))
    model.load_state_dict(torch.load(io.BytesIO(files["weights.pt"]), weights_only=True))
    return model.eval(), Tokenizer.from_str(files["tokenizer.json"].decode())


def model_files(
    model: LanguageModel, tokenizer: Tokenizer, history: list[dict[str, float]], onnx_bytes: bytes
) -> dict[str, bytes]:
    """The files of a published text version: weights, ONNX, tokenizer, config and curve."""
    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    return {
        "model.onnx": onnx_bytes,
        "weights.pt": weights.getvalue(),
        "tokenizer.json": tokenizer.to_str().encode(),
        "config.json": json.dumps(model.config.to_dict()).encode(),
        "curve.json": json.dumps(history).encode(),
    }


def export_checked(model: LanguageModel) -> tuple[bytes, dict[str, Any]]:
    """ONNX bytes and the parity report; a failed parity check stops publication (ParityError)."""
    onnx_bytes = export_onnx(model)
    fault_point("export.onnx")
    parity = check_parity(model, onnx_bytes)
    if not parity.passed:
        diff = f"max abs diff {parity.max_abs_diff:.2e} > {parity.tolerance:.0e}"
        raise ParityError(f"ONNX parity failed: {diff}; not published")
    return onnx_bytes, {"max_abs_diff": parity.max_abs_diff, "shapes": parity.shapes}


def train_persona(
    storage: Storage,
    owner_id: str,
    persona_id: str,
    dataset_version: int,
    options: ModelOptions | None = None,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """Fine-tune, evaluate, export and publish one persona model; returns its manifest.

    Besides the loss, the conversation evaluation (tasks/training/conversation_eval.py) scores the model on
    the held-out sessions, the reply ranker is calibrated there (kept under `chat`), and production
    moves only when the candidate is not worse on either (`options.gate`).
    """
    options = options or ModelOptions()
    embedder = embedder or default_embedder()
    registry = Registry(storage)
    prefix = f"datasets/{owner_id}/{persona_id}/v{dataset_version}"
    if not storage.exists(f"{prefix}/manifest.json"):
        raise InputError(prefix, "no such dataset version (build the dataset first)")
    dataset = json.loads(storage.read_bytes(f"{prefix}/manifest.json"))
    train_pairs = read_pairs(storage, f"{prefix}/train.parquet")
    if not train_pairs:  # every session of a tiny dataset went to validation
        raise InputError(
            f"persona {persona_id} of {owner_id}",
            "has no training pairs in dataset "
            f"v{dataset_version} (all its conversations are held out); more conversation is needed",
        )
    val_pairs = (
        read_pairs(storage, f"{prefix}/validation.parquet") or train_pairs[-max(1, len(train_pairs) // 10) :]
    )

    base = _newest_base(registry)
    request = _request(dataset_version, dataset["content_hash"], base.version if base else None, options,
                       embedder.name)  # fmt: skip
    earlier = _published_for(registry, owner_id, persona_id, request)
    if earlier is not None:  # a re-run (after a kill, or of a whole restore): the same model, finished
        return _finish_promotion(registry, owner_id, persona_id, earlier)
    if base is not None:
        model, tokenizer = _load_model(base.files)
        base_version: int | None = base.version
    else:
        texts = [r for _, r in train_pairs] + [t.text for c, _ in train_pairs for t in c]
        tokenizer = train_tokenizer(texts, options.vocab_size)
        model = GPT(options.gpt(tokenizer.get_vocab_size()), seed=options.train.seed)
        base_version = None
    encoder = Encoder(tokenizer, model.config.block_size)
    train_data = encoder.batchable([encoder.pair(c, r) for c, r in train_pairs])
    val_data = encoder.batchable([encoder.pair(c, r) for c, r in val_pairs])
    rank = options.lora_rank
    if rank is None:
        rank = AUTO_LORA_RANK if isinstance(model, HFCausalLM) else 0
    lora = rank > 0 and base is not None
    if lora:
        apply_lora(model, rank)
    train_config = options.train
    if isinstance(model, HFCausalLM) and not lora:
        # A pretrained model forgets what it knew at our from-scratch learning rate.
        train_config = replace(train_config, lr=min(train_config.lr, options.pretrained_lr))
    result = train(model, train_data, val_data, train_config)
    if lora:
        merge_lora(model)

    contrast = encoder.batchable([encoder.pair(c, r) for c, r in other_turns(val_pairs)])
    sampled = _sample_replies(model, encoder, val_pairs, options.style_samples, options.train.seed)
    real_style = style_stats([r for _, r in val_pairs])
    val_npc = nats_per_char(model, encoder, val_pairs)
    metrics: dict[str, Any] = {
        "val_loss": result.best_val_loss,
        "val_perplexity": perplexity(result.best_val_loss),
        "val_nats_per_char": val_npc,
        "discrimination_accuracy": pairwise_accuracy(model, val_data, contrast),
        "style_real": real_style.to_dict(),
        "style_sampled": style_stats(sampled).to_dict(),
        "style_gap": style_gap(real_style, style_stats(sampled)),
        "train_tokens_per_s": result.tokens_per_s,
        "steps": result.steps,
        "best_step": result.best_step,
        "stopped_early": result.stopped_early,
    }
    onnx_bytes, parity = export_checked(model)
    held_out = read_held_out(storage, f"{prefix}/validation.parquet") or [
        HeldOut("train", c, r) for c, r in val_pairs
    ]
    memory = read_held_out(storage, f"{prefix}/train.parquet")
    evaluation = EvalOptions(options.eval_limit, options.style_samples, options.train.seed)
    calibration, card = evaluate_version(model, encoder, held_out, memory, embedder, evaluation)
    decision = _promotion(registry, owner_id, persona_id, val_pairs, val_npc, options)
    if "current_version" in decision:  # production's scorecard on the same held-out contexts
        current = registry.load(owner_id, persona_id, "text", "production")
        theirs_model, theirs_tokenizer = _load_model(current.files)
        theirs_encoder = Encoder(theirs_tokenizer, theirs_model.config.block_size)
        theirs = production_scorecard(storage, current, theirs_model, theirs_encoder, held_out, memory,
                                      embedder, evaluation)  # fmt: skip
        decision = gate(decision, card, theirs, options.gate)
    manifest = registry.publish(
        owner_id,
        persona_id,
        "text",
        model_files(model, tokenizer, result.history, onnx_bytes),
        {
            "base_version": base_version,
            "dataset": {"version": dataset_version, "content_hash": dataset["content_hash"]},
            "persona_names": dataset.get("persona_names", [persona_id]),
            "hyper_parameters": {
                "model": model.config.to_dict(),
                "train": train_config.to_dict(),
                "vocab_size": tokenizer.get_vocab_size(),
                "fine_tune": f"lora rank {rank}" if lora else "full",
                "device": str(pick_device(options.train.device)),
            },
            "metrics": metrics,
            "conversation_eval": card.to_dict(),
            "chat": calibration.to_dict(),
            # What made the vectors its evaluation, calibration and chat memory compare.
            "embedder": {"name": embedder.name, "dim": int(embedder.dim)},
            "parity": parity,
            "request": request,
            "promotion": decision,
            "curve": result.history,
        },
    )
    fault_point("registry.published")
    if decision["promote"]:
        registry.set_alias(owner_id, persona_id, "text", "production", manifest["version"])
    return manifest


def _request(dataset_version: int, content_hash: str, base_version: int | None, options: ModelOptions,
             embedder: str) -> str:  # fmt: skip
    """What determines a trained version: its data, base, options, embedder and code (a digest)."""
    what = {"dataset": [dataset_version, content_hash], "base": base_version, "options": asdict(options),
            "embedder": embedder, "code": CODE_VERSION}  # fmt: skip
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _published_for(registry: Registry, owner_id: str, persona_id: str, request: str) -> dict[str, Any] | None:
    """The newest version already trained for exactly this request, if any."""
    for version in reversed(registry.versions(owner_id, persona_id, "text")):
        manifest = registry.manifest(owner_id, persona_id, "text", version)
        if manifest.get("request") == request:
            return manifest
    return None


def _finish_promotion(
    registry: Registry, owner_id: str, persona_id: str, manifest: dict[str, Any]
) -> dict[str, Any]:
    """Move production as the gate decided when the version was published, if nothing moved since.

    A run killed between publishing and the alias move left it undone; a production that moved
    meanwhile (another version won) stays.
    """
    decision = manifest.get("promotion") or {}
    current = registry.aliases(owner_id, persona_id, "text").get("production")
    if (
        decision.get("promote")
        and current != manifest["version"]
        and current == decision.get("current_version")
    ):
        registry.set_alias(owner_id, persona_id, "text", "production", manifest["version"])
    return manifest


def _newest_base(registry: Registry) -> Any:
    try:
        return registry.load(BASE_OWNER, BASE_PERSONA, "base", "latest")
    except RegistryError:
        return None


def _promotion(
    registry: Registry,
    owner_id: str,
    persona_id: str,
    val_pairs: list[Pair],
    new: float,
    options: ModelOptions,
) -> dict[str, Any]:
    """Not worse than production on the same validation pairs (nats/char) within the tolerance."""
    try:
        current = registry.load(owner_id, persona_id, "text", "production")
    except RegistryError:
        return {"promote": True, "reason": "first production version"}
    model, tokenizer = _load_model(current.files)
    old = nats_per_char(model, Encoder(tokenizer, model.config.block_size), val_pairs)
    limit = old * (1 + options.promote_tolerance)
    verdict = {"current_version": current.version, "current_nats_per_char": old, "new_nats_per_char": new}
    if new <= limit:
        return {
            **verdict,
            "promote": True,
            "reason": f"{new:.4f} <= {limit:.4f} (current x {1 + options.promote_tolerance})",
        }
    return {
        **verdict,
        "promote": False,
        "reason": f"validation loss {new:.4f} nats/char is worse than production v{current.version} "
        f"({old:.4f}, tolerance {options.promote_tolerance:.0%}): published as a candidate",
    }


def _sample_replies(
    model: LanguageModel, encoder: Encoder, pairs: list[Pair], n: int, seed: int
) -> list[str]:
    rng = random.Random(seed)
    chosen = rng.sample(pairs, min(n, len(pairs)))
    logits = torch_logits_fn(model)
    banned = [special_id(encoder.tokenizer, PAD), encoder.bos, encoder.persona, encoder.other, encoder.memory]
    out = []
    for i, (context, _) in enumerate(chosen):
        ids = generate(
            logits, encoder.prompt(context, budget=model.config.block_size - 40), encoder.eos,
            model.config.block_size, max_new=40, seed=seed + i, banned=banned,
        )  # fmt: skip
        out.append(encoder.tokenizer.decode(ids, skip_special_tokens=True))
    return out
