"""Recalibrate published personas for another sentence embedder, without retraining them.

A persona's reply threshold is a cosine of the embedder it was trained with. After an operator
switches embedders (`rememberme index --switch-embedder`), each production persona is calibrated
again on its held-out sessions with the new embedder's vectors and its published ONNX model (the
likelihood and generation the calibration weighs), and the result is kept beside the version
(`models/.../text/v{N}/calibration-e<hash>.json`; numbers only, no text: a derived object that
forget removes with the version). Chat then answers from memory at once instead of refusing
until the persona is retrained.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from infra.registry import Registry
from infra.storage import Storage
from infra.text_features import Embedder
from schemas.search import BUNDLED_EMBEDDER
from tasks.replies.chat import PersonaChat, calibration_key
from tasks.replies.ranker import Calibration
from tasks.training.conversation_eval import read_held_out
from tasks.training.promotion import EvalOptions, calibration_for


def recalibrate(
    storage: Storage,
    owner_id: str,
    persona_id: str,
    embedder: Embedder,
    version: int | None = None,
    options: EvalOptions | None = None,
) -> Calibration:
    """Calibrate one published text version (production by default) for `embedder`; kept beside it."""
    options = options or EvalOptions()
    chat = PersonaChat(storage, owner_id, persona_id, version, mode="generate", seed=options.seed)
    prefix = f"datasets/{owner_id}/{persona_id}/v{int(chat.manifest['dataset']['version'])}"
    held_out = read_held_out(storage, f"{prefix}/validation.parquet")
    memory = read_held_out(storage, f"{prefix}/train.parquet")
    made = calibration_for(held_out, memory, embedder, chat.likelihood, chat.say, options)
    trained_with = chat.calibration.embedder or BUNDLED_EMBEDDER
    calibration = replace(made, source=f"recalibrated for this embedder (trained with {trained_with})")
    with storage.open_write(calibration_key(owner_id, persona_id, chat.version, embedder)) as handle:
        handle.write(json.dumps(calibration.to_dict(), ensure_ascii=False).encode())
    return calibration


def recalibrate_production(
    storage: Storage, embedder: Embedder, options: EvalOptions | None = None
) -> list[dict[str, Any]]:
    """Recalibrate every production persona not calibrated for `embedder` yet; what was done."""
    done = []
    for manifest in Registry(storage).productions("text"):
        owner, persona, version = manifest["owner_id"], manifest["persona"], int(manifest["version"])
        if Calibration.from_manifest(manifest).made_with(embedder):
            continue
        calibration = recalibrate(storage, owner, persona, embedder, version, options)
        done.append({"owner_id": owner, "persona_id": persona, "version": version,
                     "threshold": calibration.threshold})  # fmt: skip
    return done
