"""The shared base text model: pretrain it on what consent allows, or import a local pretrained LM.

Personas fine-tune from the newest base (tasks/training/train.py). Its corpus is consent-filtered and
redacted (tasks/trust/consent.py, tasks/trust/zones.py), and its lineage names owners and opaque subject keys,
never names or text, so forget can find every base that learned from someone.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

from infra.registry import Registry
from infra.storage import Storage
from models.data import Encoder, Turn
from models.errors import ParityError
from models.evaluate import perplexity
from models.exporter import ExportError
from models.gpt import GPT
from models.hf import HFLoadError, load_hf_directory
from models.tokenizer import train_tokenizer
from models.train import train
from parsers.errors import InputError
from tasks.datasets.clean import subject_key
from tasks.training.train import BASE_OWNER, BASE_PERSONA, ModelOptions, export_checked, model_files


def train_base(
    storage: Storage,
    conversations: list[list[Turn]],
    options: ModelOptions | None = None,
    note: str = "",
    lineage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Pretrain the shared base on whole conversations (every token learned) and publish it."""
    options = options or ModelOptions()
    texts = [t.text for conv in conversations for t in conv]
    if len(texts) < 50:
        raise InputError(
            "base corpus",
            f"only {len(texts)} messages consented to base training; the base needs at least 50 "
            "(owners opt in with `rememberme consent base --owner O --grant`; platform consents "
            "with base_training: true)",
        )
    tokenizer = train_tokenizer(texts, options.vocab_size)
    model = GPT(options.gpt(tokenizer.get_vocab_size()), seed=options.train.seed)
    encoder = Encoder(tokenizer, model.config.block_size)
    chunks = [c for conv in conversations for c in encoder.conversation(conv)]
    random.Random(options.train.seed).shuffle(chunks)
    n_val = max(1, len(chunks) // 20)
    result = train(model, encoder.batchable(chunks[n_val:]), encoder.batchable(chunks[:n_val]), options.train)
    onnx_bytes, parity = export_checked(model)
    metrics = {"val_loss": result.best_val_loss, "val_perplexity": perplexity(result.best_val_loss)}
    return Registry(storage).publish(
        BASE_OWNER,
        BASE_PERSONA,
        "base",
        model_files(model, tokenizer, result.history, onnx_bytes),
        {
            "base_version": None,
            "corpus": {"conversations": len(conversations), "messages": len(texts), "note": note},
            "lineage": lineage or {},
            "hyper_parameters": {"model": model.config.to_dict(), "train": asdict(options.train)},
            "metrics": metrics,
            "parity": parity,
            "curve": result.history,
        },
    )


def import_base(
    storage: Storage, directory: str, options: ModelOptions | None = None, note: str = ""
) -> dict[str, Any]:
    """Publish a local Hugging Face causal LM as the newest base (personas then fine-tune from it).

    Nothing downloads: `directory` holds `config.json`, weights and `tokenizer.json`. The model is
    exported and parity-checked here, once, so an architecture ONNX cannot carry is refused before
    any persona spends time fine-tuning it.
    """
    options = options or ModelOptions()
    try:
        model, tokenizer = load_hf_directory(Path(directory), options.block_size)
    except HFLoadError as exc:
        raise InputError(directory, str(exc).removeprefix(f"{directory}: ")) from exc
    try:
        onnx_bytes, parity = export_checked(model)
    except ParityError:
        raise
    except Exception as exc:  # the exporter raises many types; what matters is that it cannot
        kind, detail = type(exc).__name__, str(exc)
        if isinstance(exc, ExportError):
            kind, detail = exc.kind, exc.detail
        summary = detail.strip().splitlines()[0][:200] if detail.strip() else kind
        raise InputError(directory, f"cannot be exported to ONNX ({kind}: {summary})") from exc
    return Registry(storage).publish(
        BASE_OWNER,
        BASE_PERSONA,
        "base",
        model_files(model, tokenizer, [], onnx_bytes),
        {
            "base_version": None,
            "corpus": {"imported_from": model.config.source, "note": note},
            "hyper_parameters": {
                "model": {k: v for k, v in model.config.to_dict().items() if k != "hf_config"},
                "model_type": model.config.hf_config.get("model_type"),
                "parameters": sum(p.numel() for p in model.parameters()),
            },
            "metrics": {},
            "parity": parity,
            "curve": [],
        },
    )


def base_corpus(storage: Storage, max_messages: int = 500_000) -> tuple[list[list[Turn]], dict[str, Any]]:
    """What the shared base may learn from, redacted, as turns; and its lineage.

    Consent decides (tasks/trust/consent.py): an owner's KakaoTalk uploads only if the owner opted in;
    platform messages only the words of subjects whose consent covers base training (once, though
    every consenting owner's lake holds a copy). Text goes through the trust boundary's one
    redaction (tasks/trust/zones.py). Speakers alternate markers (`<other>` for a conversation's first
    speaker, `<persona>` for the next, ...), so the base learns the turn format personas use. The
    lineage names owners and opaque subject keys (`subject_key`), never names or text.
    """
    from tasks.trust.consent import base_consents
    from tasks.trust.zones import derived_messages

    allowed = base_consents(storage)
    conversations: list[list[Turn]] = []
    total = 0
    seen_platform: set[tuple[Any, str, str]] = set()
    owners_used: set[str] = set()
    subjects_used: set[str] = set()
    digest = hashlib.sha256()
    owners = sorted({k.split("/")[1].removeprefix("owner=") for k in storage.list("messages/")})
    for owner in owners:
        names = allowed.subjects.get(owner, set())
        if not allowed.allows_upload(owner) and not names:
            continue
        columns = ["message_id", "conversation_id", "ts", "speaker", "text", "kind", "source"]
        frame = derived_messages(storage, owner).select(columns).to_pandas()
        frame = frame[(frame["kind"] == "text") & frame["speaker"].notna()]
        platform = frame["source"] == "platform_chat"
        keep = (~platform & allowed.allows_upload(owner)) | (platform & frame["speaker"].isin(names))
        frame = frame[keep].sort_values(["conversation_id", "ts", "message_id"])
        for _, group in frame.groupby("conversation_id", sort=True):
            rows = group[["speaker", "text", "ts", "source", "message_id"]].itertuples(index=False)
            fresh = []
            for speaker, text, ts, source, message_id in rows:
                if source == "platform_chat":
                    if (ts, speaker, text) in seen_platform:
                        continue
                    seen_platform.add((ts, speaker, text))
                    subjects_used.add(subject_key(owner, speaker))
                else:
                    owners_used.add(owner)
                fresh.append((speaker, text))
                digest.update(f"{owner}|{message_id}\n".encode())
            if not fresh:
                continue
            first = fresh[0][0]
            conversations.append([Turn(text, speaker != first) for speaker, text in fresh])
            total += len(fresh)
            if total >= max_messages:
                break
        if total >= max_messages:
            break
    lineage = {
        "owners": sorted(owners_used),
        "subjects": sorted(subjects_used),
        "messages": total,
        "content_hash": digest.hexdigest(),
        "consent": "owner opt-in (uploads) or platform consent with base_training (subjects' own words)",
    }
    return conversations, lineage
