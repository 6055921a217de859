"""instant_restore: upload -> lake -> quality-gated dataset -> index -> model -> publish -> first reply.

Wiring only; each step is a task in its stage's prefect_tasks.py over a plain function.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.voice import voice_restore
from infra.settings import Settings
from infra.storage import open_storage
from tasks.datasets.build import DatasetOptions
from tasks.datasets.prefect_tasks import build_persona_dataset
from tasks.indexing.prefect_tasks import index_owner, index_pairs_task
from tasks.ingest.prefect_tasks import ingest_upload
from tasks.lifecycle.locks import persona_lock
from tasks.runs.artifacts import (
    artifact_key,
    report_dataset,
    report_index,
    report_ingest,
    report_markdown,
    report_training,
)
from tasks.runs.markdown import restore_markdown
from tasks.runs.run_logs import readable_failure_logs
from tasks.training.prefect_tasks import first_reply, train_persona_model


@flow(name="instant-restore", log_prints=True, persist_result=True)
def instant_restore(
    owner_id: str,
    persona: str,
    sources: list[str],
    aliases: list[str] | None = None,
    lake_url: str | None = None,
    index: bool = True,
    vectors: bool | None = None,
    train: bool = True,
    train_steps: int | None = None,
    audio: list[str] | None = None,
    voice: bool = True,
    min_pairs: int | None = None,
    date_order: str | None = None,
) -> dict[str, Any]:
    """Restore `persona` for `owner_id` from chat exports of any source read (local paths or lake keys).

    `date_order` (`dmy`, `mdy`, `ymd`) says how a WhatsApp export's dates read when the file cannot.
    """
    readable_failure_logs()
    settings = Settings()
    lake = lake_url or settings.lake_url
    with persona_lock(owner_id, persona, open_storage(lake)):
        ingests = [ingest_upload(source, owner_id, lake, date_order) for source in sources]
        report_ingest(owner_id, ingests)
        options = None if min_pairs is None else DatasetOptions(min_pairs=min_pairs)
        dataset = build_persona_dataset(lake, owner_id, persona, aliases or [], options)
        report_dataset(dataset)
        indexed = None
        if index:
            indexed = index_owner(
                lake, owner_id, None, settings.index_vectors if vectors is None else vectors
            )
            report_index([indexed], owner_id)
        model, reply = None, None
        if train:
            model = train_persona_model(lake, owner_id, dataset.persona_id, dataset.version, train_steps)
            report_training(model)
            if index:  # always with vectors: chat's similarity threshold needs them
                index_pairs_task(lake, owner_id, dataset.persona_id, dataset.version, True)
            reply = first_reply(lake, owner_id, dataset.persona_id, index, True)
        voiced = None
        if voice:  # uploaded audio and the persona's KakaoTalk voice messages
            names = dataset.manifest.get("persona_names", [persona])
            voiced = voice_restore(lake, owner_id, dataset.persona_id, names, audio or [], train, train_steps)
        summary = restore_markdown(owner_id, persona, ingests, dataset, indexed, model, reply)
        report_markdown(summary, artifact_key("restore", owner_id, persona), "Instant restore")
    return {
        "owner_id": owner_id,
        "persona": persona,
        "messages": sum(s.messages for s in ingests),
        "dataset": dataset.to_dict(),
        "indexed": indexed.indexed if indexed else None,
        "model": _model_summary(model),
        "reply": reply,
        "voice": voiced,
    }


def _model_summary(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    if manifest is None:
        return None
    metrics = manifest["metrics"]
    return {
        "version": manifest["version"],
        "production": bool(manifest["promotion"]["promote"]),
        "val_loss": metrics["val_loss"],
        "discrimination_accuracy": metrics["discrimination_accuracy"],
        "promotion": manifest["promotion"]["reason"],
    }
