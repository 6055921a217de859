"""Prefect tasks of the training stage: thin wrappers over the plain functions beside them.

torch-heavy modules are imported inside the tasks that train, so flows that only chat or index
start fast.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from infra import services
from infra.faults import fault_point
from infra.registry import Registry
from infra.search import connect
from infra.settings import Settings
from infra.storage import open_storage
from infra.text_features import default_embedder
from parsers.errors import InputError
from tasks.datasets.build import build_dataset
from tasks.datasets.quality import QualityGateError
from tasks.lifecycle.locks import persona_lock
from tasks.runs.policy import RETRY
from tasks.runs.run_logs import readable_failure_logs
from tasks.training.options import persona_model_options


@task(name="refresh-persona", persist_result=True)
def refresh_persona(
    lake_url: str, owner_id: str, persona: str, train: bool = True, index: bool = True
) -> dict[str, Any]:
    """Rebuild a persona whose data changed and, on a new dataset version, retrain and publish it.

    Too little data is a skip with its reason, not a failure: the other personas go on. With
    `index` off (a pass run without search) its pairs are not re-indexed either.
    """
    readable_failure_logs()  # also in a Dask worker, another process
    with persona_lock(owner_id, persona, open_storage(lake_url)):  # not during its restore or forget
        return _refresh_persona(lake_url, owner_id, persona, train, index)


def _refresh_persona(lake_url: str, owner_id: str, persona: str, train: bool, index: bool) -> dict[str, Any]:
    from tasks.lifecycle.forget import is_forgotten, load_tombstones

    storage = open_storage(lake_url)
    # Checked again here, under the persona's lock (forget holds it too): a pass planned before a
    # forget must not rebuild, retrain or re-index the person after the forget's receipt.
    if is_forgotten(load_tombstones(storage), owner_id, persona):
        return {"owner_id": owner_id, "persona": persona, "status": "skipped", "reason": "forgotten"}
    try:
        result = build_dataset(storage, owner_id, persona)
    except (InputError, QualityGateError) as exc:
        return {"owner_id": owner_id, "persona": persona, "status": "skipped", "reason": str(exc)}
    summary = {"status": "built", **result.to_dict(), "persona": persona, "model_version": None}
    untrained = not Registry(storage).trained_on(owner_id, result.persona_id, "text", result.version)
    if train and (result.created or untrained):  # untrained: an earlier pass failed to train it
        from tasks.training.train import train_persona

        options = persona_model_options()
        manifest = train_persona(storage, owner_id, result.persona_id, result.version, options)
        summary["model_version"] = manifest["version"]
        summary["production"] = bool(manifest["promotion"]["promote"])
        summary["manifest"] = manifest  # the flow reports its curve and card, then drops it
    if train and index:  # chat's memory follows the data: its new pairs, re-indexed (_id = pair_id)
        from tasks.indexing.indexer import index_persona_pairs

        client = connect(services.elasticsearch_url(Settings()))
        pairs = index_persona_pairs(
            storage, client, owner_id, result.persona_id, result.version, default_embedder()
        )
        summary["pairs_indexed"] = pairs.indexed
    fault_point("recycle.refreshed")
    return summary


@task(name="train-persona", persist_result=True)
def train_persona_model(
    lake_url: str, owner_id: str, persona_id: str, dataset_version: int, max_steps: int | None = None
) -> dict[str, Any]:
    """Fine-tune, evaluate, export (parity-checked) and publish; returns the manifest."""
    from tasks.training.train import train_persona

    options = persona_model_options(max_steps)
    manifest = train_persona(open_storage(lake_url), owner_id, persona_id, dataset_version, options)
    fault_point("restore.trained")
    return manifest


@task(name="first-reply", persist_result=False, **RETRY)  # the reply text is not kept in results
def first_reply(
    lake_url: str, owner_id: str, persona_id: str, retrieval: bool, vectors: bool
) -> dict[str, Any]:
    """The new production model's answer to the probe message (proof the checkpoint chats)."""
    from tasks.replies.chat import PersonaChat

    settings = Settings()
    client = connect(services.elasticsearch_url(settings)) if retrieval else None
    embedder = default_embedder() if retrieval and vectors else None
    chat = PersonaChat(open_storage(lake_url), owner_id, persona_id, "latest", client, embedder)
    reply = chat.reply(settings.chat_probe)
    return {"message": settings.chat_probe, "reply": reply.text, "source": reply.mode, "notice": reply.notice,
            "version": chat.version}  # fmt: skip


@task(name="train-base", persist_result=True)
def train_base_model(lake_url: str, max_steps: int | None = None) -> dict[str, Any]:
    """Pretrain the shared base on the consented, redacted conversations of the lake; publish it."""
    from models.train import TrainConfig
    from tasks.training.base_model import base_corpus, train_base
    from tasks.training.train import ModelOptions

    settings = Settings()
    storage = open_storage(lake_url)
    config = TrainConfig(max_steps=max_steps or settings.train_max_steps * 2, device=settings.train_device)
    corpus, lineage = base_corpus(storage)
    note = "consented, redacted text: opted-in owners' uploads, base-consenting platform subjects"
    return train_base(storage, corpus, ModelOptions(train=config), note=note, lineage=lineage)


@task(name="import-base", persist_result=True)
def import_base_model(lake_url: str, directory: str) -> dict[str, Any]:
    """Publish a local Hugging Face causal LM directory as the newest base (nothing downloads)."""
    from tasks.training.base_model import import_base
    from tasks.training.train import ModelOptions

    note = "imported by train-base --from-hf"
    return import_base(open_storage(lake_url), directory, ModelOptions(), note=note)
