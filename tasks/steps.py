"""Prefect tasks: thin wrappers over the plain step functions (tests call those directly).

Retries only on transient failures (network, 429, 5xx) with exponential back-off; bad input and
failed gates fail at once with their one-line cause. Every wrapped step is idempotent: ids and
object names derive from content, manifests and watermarks are written last.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.tasks import Task, exponential_backoff

from infra import services
from infra.registry import Registry
from infra.search import connect
from infra.settings import Settings
from infra.storage import Storage, open_storage
from infra.text_features import default_embedder
from infra.transient import is_transient
from infra.version import CODE_VERSION
from parsers.errors import InputError
from parsers.kakao.export import file_sha256
from schemas.names import slug
from tasks import recycle
from tasks.dataset import DatasetOptions, DatasetResult, build_dataset
from tasks.index import IndexSummary, index_table
from tasks.ingest import IngestSummary, completed_ingest, ingest_export
from tasks.lake import load_message_table, read_parts
from tasks.locks import persona_lock
from tasks.platform import StagedFile, stage_chat_file
from tasks.quality import QualityGateError
from tasks.retries import RetryItem
from tasks.run_logs import readable_failure_logs

if TYPE_CHECKING:  # torch-heavy: imported inside the tasks that train
    from tasks.train import ModelOptions


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect retry condition: only failures that may pass on a later try."""
    try:
        state.result()
    except Exception as exc:  # the task's own exception, re-raised by result()
        return is_transient(exc)
    return False


_RETRY: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_if_transient,
}


@contextlib.contextmanager
def local_copy(source: str, storage: Storage) -> Iterator[Path]:
    """A local path for `source`: a file on this machine, or a key in the lake (downloaded)."""
    path = Path(source)
    if path.exists() or not storage.exists(source):
        yield path  # a missing path fails in ingest with the usual one-line error
        return
    with tempfile.TemporaryDirectory(prefix="rememberme-src-") as tmp:
        local = Path(tmp) / Path(source).name
        local.write_bytes(storage.read_bytes(source))
        yield local


def _ingest_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    """Cache only an upload the lake already holds complete (marker + parts) for this code version.

    The key is the upload's content, owner, lake and code version: new bytes, another owner or a
    newer parser give a new key; a forgotten (deleted) ingest gives no key, so it runs again.
    """
    storage = open_storage(parameters["lake_url"])
    path = Path(parameters["source"])
    if not path.is_file():
        return None
    sha = file_sha256(path)
    if completed_ingest(storage, parameters["owner_id"], sha[:16]) is None:
        return None
    raw = f"{sha}|{parameters['owner_id']}|{parameters['lake_url']}|{CODE_VERSION}"
    return "ingest-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


@task(name="ingest-upload", cache_key_fn=_ingest_cache_key, persist_result=True, **_RETRY)
def ingest_upload(source: str, owner_id: str, lake_url: str) -> IngestSummary:
    """Parse one KakaoTalk export into the owner's lake (resumes a finished upload)."""
    storage = open_storage(lake_url)
    with local_copy(source, storage) as path:
        return ingest_export(path, owner_id, storage, Settings(), display_name=Path(source).name)


@task(name="build-dataset", persist_result=True)
def build_persona_dataset(
    lake_url: str, owner_id: str, persona: str, aliases: list[str], options: DatasetOptions | None = None
) -> DatasetResult:
    """Clean, gate and version one persona's training pairs."""
    return build_dataset(open_storage(lake_url), owner_id, persona, aliases, options)


@task(name="refresh-persona", persist_result=True)
def refresh_persona(lake_url: str, owner_id: str, persona: str, train: bool = True) -> dict[str, Any]:
    """Rebuild a persona whose data changed and, on a new dataset version, retrain and publish it.

    Too little data is a skip with its reason, not a failure: the other personas go on.
    """
    readable_failure_logs()  # also in a Dask worker, another process
    with persona_lock(owner_id, persona, open_storage(lake_url)):  # not during its restore or forget
        return _refresh_persona(lake_url, owner_id, persona, train)


def _refresh_persona(lake_url: str, owner_id: str, persona: str, train: bool) -> dict[str, Any]:
    storage = open_storage(lake_url)
    try:
        result = build_dataset(storage, owner_id, persona)
    except (InputError, QualityGateError) as exc:
        return {"owner_id": owner_id, "persona": persona, "status": "skipped", "reason": str(exc)}
    summary = {"status": "built", **result.to_dict(), "persona": persona, "model_version": None}
    untrained = not Registry(storage).trained_on(owner_id, result.persona_id, "text", result.version)
    if train and (result.created or untrained):  # untrained: an earlier pass failed to train it
        from tasks.train import train_persona

        options = persona_model_options()
        manifest = train_persona(storage, owner_id, result.persona_id, result.version, options)
        summary["model_version"] = manifest["version"]
        summary["production"] = bool(manifest["promotion"]["promote"])
        summary["manifest"] = manifest  # the flow reports its curve and card, then drops it
    if train:  # chat's memory follows the data: the new pairs, re-indexed idempotently (_id = pair_id)
        from tasks.index import index_persona_pairs

        client = connect(services.elasticsearch_url(Settings()))
        pairs = index_persona_pairs(
            storage, client, owner_id, result.persona_id, result.version, default_embedder()
        )
        summary["pairs_indexed"] = pairs.indexed
    return summary


def persona_model_options(max_steps: int | None = None) -> ModelOptions:
    """`ModelOptions` from the settings: steps, device, LoRA rank (one place for every flow)."""
    from models.train import TrainConfig
    from tasks.conversation_eval import GateTolerances
    from tasks.train import ModelOptions

    settings = Settings()
    config = TrainConfig(max_steps=max_steps or settings.train_max_steps, device=settings.train_device)
    gate = GateTolerances(settings.gate_selection_tolerance, settings.gate_similarity_tolerance)
    return ModelOptions(train=config, lora_rank=settings.train_lora_rank, gate=gate)


@task(name="index-messages", persist_result=True, **_RETRY)
def index_owner(
    lake_url: str, owner_id: str, parts: list[str] | None = None, vectors: bool = True
) -> IndexSummary:
    """Index an owner's messages (only `parts` when given); rejects go to quarantine."""
    readable_failure_logs()  # also in a Dask worker, another process
    settings = Settings()
    storage = open_storage(lake_url)
    client = connect(services.elasticsearch_url(settings))
    table = read_parts(storage, parts) if parts is not None else load_message_table(storage, owner_id)
    return index_table(storage, client, owner_id, table, default_embedder() if vectors else None)


@task(name="plan-recycling", **_RETRY)
def plan_recycling(
    lake_url: str, as_of: date, lookback_days: int, retry_parked: bool = False
) -> recycle.RecyclePlan:
    """What is new since the watermark, which consents hold, which failed pieces to do again."""
    return recycle.plan_pass(open_storage(lake_url), as_of, lookback_days, retry_parked)


@task(name="stage-landing-file", **_RETRY)
def stage_landing_file(lake_url: str, key: str) -> StagedFile:
    """Parse one landing chat file and stage it per room."""
    from tasks.forget import forgotten_senders

    storage = open_storage(lake_url)
    return stage_chat_file(storage, key, forgotten_senders(storage))


@task(name="route-to-owners", **_RETRY)
def route_to_owners(
    lake_url: str, plan: recycle.RecyclePlan, staged: list[StagedFile]
) -> recycle.RouteResult:
    """Copy staged events (and voice manifests) into each consenting owner's lake."""
    return recycle.route_pass(open_storage(lake_url), plan, staged)


@task(name="commit-watermark", **_RETRY)
def commit_watermark(
    lake_url: str,
    plan: recycle.RecyclePlan,
    routed: recycle.RouteResult,
    attempted: list[str],
    failed: list[RetryItem],
) -> dict[str, Any]:
    """Advance the watermark after everything of the pass is written; record the failed pieces."""
    state = recycle.commit_pass(open_storage(lake_url), plan, routed, set(attempted), failed)
    return {
        "runs": state.runs,
        "streams": {k: v.through_dt for k, v in state.streams.items()},
        "failed": [item.to_dict() for item in state.failed.values()],
    }


@task(name="forget-subject", **_RETRY)
def forget_subject(lake_url: str, owner_id: str, persona: str | None, aliases: list[str]) -> dict[str, Any]:
    """Remove a persona (or an owner) from the lake, search, datasets, models and bases; a receipt."""
    from tasks.forget_derived import forget

    settings = Settings()
    client = connect(services.elasticsearch_url(settings))
    return forget(open_storage(lake_url), client, owner_id, persona, tuple(aliases), persona_model_options(),
                  default_embedder())  # fmt: skip


@task(name="forget-prefect-history", **_RETRY)
def forget_prefect_history(owner_id: str, names: list[str], keep_flow_run: str | None) -> dict[str, Any]:
    """Remove what Prefect holds about the subject: runs, results, artifacts, logs, events."""
    from uuid import UUID

    from tasks.prefect_history import Mentions, forget_history

    keep = UUID(keep_flow_run) if keep_flow_run else None
    return forget_history(Mentions(owner_id, tuple(names)), keep).to_dict()


@task(name="train-persona", persist_result=True)
def train_persona_model(
    lake_url: str, owner_id: str, persona_id: str, dataset_version: int, max_steps: int | None = None
) -> dict[str, Any]:
    """Fine-tune, evaluate, export (parity-checked) and publish; returns the manifest."""
    from tasks.train import train_persona

    options = persona_model_options(max_steps)
    return train_persona(open_storage(lake_url), owner_id, persona_id, dataset_version, options)


@task(name="index-pairs", persist_result=True, **_RETRY)
def index_pairs_task(
    lake_url: str, owner_id: str, persona_id: str, dataset_version: int, vectors: bool = True
) -> IndexSummary:
    """Index the persona's context->reply pairs (the memory `chat` retrieves real replies from)."""
    from tasks.index import index_persona_pairs

    client = connect(services.elasticsearch_url(Settings()))
    storage = open_storage(lake_url)
    embedder = default_embedder() if vectors else None
    return index_persona_pairs(storage, client, owner_id, persona_id, dataset_version, embedder)


@task(name="first-reply", persist_result=False, **_RETRY)  # the reply text is not kept in results
def first_reply(
    lake_url: str, owner_id: str, persona_id: str, retrieval: bool, vectors: bool
) -> dict[str, Any]:
    """The new production model's answer to the probe message (proof the checkpoint chats)."""
    from tasks.chat import PersonaChat

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
    from tasks.base_model import base_corpus, train_base
    from tasks.train import ModelOptions

    settings = Settings()
    storage = open_storage(lake_url)
    config = TrainConfig(max_steps=max_steps or settings.train_max_steps * 2, device=settings.train_device)
    corpus, lineage = base_corpus(storage)
    note = "consented, redacted text: opted-in owners' uploads, base-consenting platform subjects"
    return train_base(storage, corpus, ModelOptions(train=config), note=note, lineage=lineage)


@task(name="import-base", persist_result=True)
def import_base_model(lake_url: str, directory: str) -> dict[str, Any]:
    """Publish a local Hugging Face causal LM directory as the newest base (nothing downloads)."""
    from tasks.base_model import import_base
    from tasks.train import ModelOptions

    note = "imported by train-base --from-hf"
    return import_base(open_storage(lake_url), directory, ModelOptions(), note=note)


@task(name="train-voice-base", persist_result=True)
def train_voice_base_model(lake_url: str, steps: int | None = None) -> dict[str, Any]:
    """Pretrain the multi-speaker voice base on every persona's newest voice dataset; publish it."""
    from tasks.voice_model import train_voice_base

    return train_voice_base(open_storage(lake_url), steps=steps or 600)


@task(name="import-voice-base", persist_result=True)
def import_voice_base_model(lake_url: str, directory: str) -> dict[str, Any]:
    """Publish a voice base from a local folder (config.json + weights) as the newest base."""
    from tasks.voice_model import import_voice_base

    return import_voice_base(open_storage(lake_url), directory)


@task(name="preprocess-voice", **_RETRY)
def preprocess_voice(lake_url: str, owner_id: str) -> dict[str, Any]:
    """Cut an owner's new voice recordings into measured, normalised utterances."""
    readable_failure_logs()  # also in a Dask worker, another process
    from tasks.asr import load_transcriber
    from tasks.voice import process_owner_recordings

    transcriber = load_transcriber(Settings().asr_model)
    return process_owner_recordings(open_storage(lake_url), owner_id, transcriber=transcriber).to_dict()


@task(name="refresh-voice", persist_result=True)
def refresh_voice(lake_url: str, owner_id: str, persona: str, train: bool = True) -> dict[str, Any]:
    """Version the persona's utterances and, on a new version, adapt and publish their voice model."""
    readable_failure_logs()  # also in a Dask worker, another process
    with persona_lock(owner_id, persona, open_storage(lake_url)):  # not during its restore or forget
        return _refresh_voice(lake_url, owner_id, persona, train)


def _refresh_voice(lake_url: str, owner_id: str, persona: str, train: bool) -> dict[str, Any]:
    from tasks.voice import build_voice_dataset
    from tasks.voice_model import MIN_TRANSCRIBED, train_user_voice

    storage = open_storage(lake_url)
    try:
        dataset = build_voice_dataset(storage, owner_id, persona)
        out = {
            "owner_id": owner_id,
            "persona": persona,
            "status": "built",
            "dataset_version": dataset["version"],
            "minutes": dataset["minutes"],
            "model_version": None,
        }
        # Untrained: an earlier pass built this version but failed to train it.
        untrained = dataset["with_transcript"] >= MIN_TRANSCRIBED and not Registry(storage).trained_on(
            owner_id, slug(persona), "voice", dataset["version"]
        )
        if train and (dataset["created"] or untrained):
            steps = Settings().train_max_steps
            manifest = train_user_voice(storage, owner_id, persona, dataset["version"], steps)
            out["model_version"], out["manifest"] = manifest["version"], manifest
    except InputError as exc:
        return {"owner_id": owner_id, "persona": persona, "status": "skipped", "reason": str(exc)}
    return out


@task(name="restore-voice", persist_result=True, **_RETRY)
def restore_voice_task(
    lake_url: str, owner_id: str, persona: str, names: list[str], audio: list[str]
) -> dict[str, Any]:
    """Uploaded audio (a `.txt` beside a file is its transcript) + KakaoTalk voice messages -> dataset."""
    from tasks.asr import load_transcriber
    from tasks.voice import restore_voice

    storage = open_storage(lake_url)
    files = []
    for source in audio:
        with local_copy(source, storage) as path:
            if not path.is_file():
                raise InputError(source, "no such audio file")
            sidecar = path.with_suffix(".txt")
            transcript = sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else None
            files.append((path.name, path.read_bytes(), transcript))
    transcriber = load_transcriber(Settings().asr_model)
    return restore_voice(storage, owner_id, persona, names, files, transcriber=transcriber)


@task(name="train-voice", persist_result=True)
def train_voice_task(
    lake_url: str, owner_id: str, persona: str, dataset_version: int, steps: int | None = None
) -> dict[str, Any]:
    """Adapt the newest voice base to one persona's transcribed utterances; publish (parity-checked)."""
    from tasks.voice_model import train_user_voice

    steps = steps or Settings().train_max_steps
    return train_user_voice(open_storage(lake_url), owner_id, persona, dataset_version, steps)
