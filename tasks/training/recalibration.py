"""Recalibrate published personas for another sentence embedder, without retraining them.

A persona's reply threshold is a cosine of the embedder it was trained with. Before an operator's
switch of embedders moves the indices (`rememberme index --switch-embedder`), each production
persona is calibrated again on its held-out sessions with the new embedder's vectors and its
published ONNX model (the likelihood and generation the calibration weighs). The result is kept
beside the version (`models/.../text/v{N}/calibration-<embedder tag>.json`: numbers and lineage,
no text; a derived object that forget and retire remove with the version), so chat answers from
memory right after the switch instead of refusing until the persona is retrained.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from infra.registry import Registry, RegistryError
from infra.storage import Storage
from infra.text_features import Embedder
from infra.version import CODE_VERSION
from infra.versions import VersionError
from schemas.search import BUNDLED_EMBEDDER
from tasks.lifecycle.locks import persona_locks
from tasks.replies.calibration import calibration_key, calibration_under
from tasks.replies.chat import PersonaChat
from tasks.replies.ranker import Calibration
from tasks.training.conversation_eval import version_sessions
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
    dataset = int(chat.manifest["dataset"]["version"])
    held_out, memory = version_sessions(storage, chat.manifest)
    made = calibration_for(held_out, memory, embedder, chat.likelihood, chat.say, options)
    trained_with = chat.calibration.embedder or BUNDLED_EMBEDDER
    calibration = replace(made, source=f"recalibrated for this embedder (trained with {trained_with})")
    lineage = {"version": chat.version, "dataset_version": dataset, "held_out_limit": options.limit,
               "created_at": datetime.now(UTC).isoformat(), "code_version": CODE_VERSION}  # fmt: skip
    # Under the persona's lease: a forget running meanwhile must not find a file recreated after it.
    with persona_locks(owner_id, [persona_id], storage):
        if chat.version not in Registry(storage).versions(owner_id, persona_id, "text"):
            raise RegistryError(
                f"{owner_id}/{persona_id} text v{chat.version} was removed while it was recalibrated"
            )
        with storage.open_write(calibration_key(owner_id, persona_id, chat.version, embedder)) as handle:
            handle.write(
                json.dumps({**calibration.to_dict(), "lineage": lineage}, ensure_ascii=False).encode()
            )
    return calibration


def recalibrate_production(
    storage: Storage, embedder: Embedder, options: EvalOptions | None = None, redo: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Calibrate every production persona for `embedder` (those not calibrated for it yet, unless `redo`).

    Returns `recalibrated` (owner, persona, version, threshold) and `skipped` (with the reason: a
    dataset or version forgotten meanwhile); one persona's missing data never stops the others.
    """
    done: dict[str, list[dict[str, Any]]] = {"recalibrated": [], "skipped": []}
    for manifest in Registry(storage).productions("text"):
        owner, persona, version = manifest["owner_id"], manifest["persona"], int(manifest["version"])
        row: dict[str, Any] = {"owner_id": owner, "persona_id": persona, "version": version}
        if not redo and calibration_under(storage, manifest, embedder) is not None:
            continue
        try:
            calibration = recalibrate(storage, owner, persona, embedder, version, options)
        except (VersionError, RegistryError, FileNotFoundError) as exc:
            done["skipped"].append({**row, "reason": str(exc)})
            continue
        done["recalibrated"].append({**row, "threshold": calibration.threshold})
    return done
