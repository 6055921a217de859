"""Prefect tasks of the voice stage: thin wrappers over the plain functions beside them."""

from __future__ import annotations

from typing import Any

from prefect import task

from infra.registry import Registry
from infra.settings import Settings
from infra.storage import open_storage
from parsers.errors import InputError
from schemas.names import slug
from tasks.lifecycle.locks import persona_lock
from tasks.runs.policy import RETRY, local_copy
from tasks.runs.run_logs import readable_failure_logs


@task(name="train-voice-base", persist_result=True)
def train_voice_base_model(lake_url: str, steps: int | None = None) -> dict[str, Any]:
    """Pretrain the multi-speaker voice base on every persona's newest voice dataset; publish it."""
    from tasks.voice.voice_model import train_voice_base

    return train_voice_base(open_storage(lake_url), steps=steps or 600)


@task(name="import-voice-base", persist_result=True)
def import_voice_base_model(lake_url: str, directory: str) -> dict[str, Any]:
    """Publish a voice base from a local folder (config.json + weights) as the newest base."""
    from tasks.voice.voice_model import import_voice_base

    return import_voice_base(open_storage(lake_url), directory)


@task(name="preprocess-voice", **RETRY)
def preprocess_voice(lake_url: str, owner_id: str) -> dict[str, Any]:
    """Cut an owner's new voice recordings into measured, normalised utterances."""
    readable_failure_logs()  # also in a Dask worker, another process
    from tasks.voice.asr import load_transcriber
    from tasks.voice.recordings import process_owner_recordings

    transcriber = load_transcriber(Settings().asr_model)
    return process_owner_recordings(open_storage(lake_url), owner_id, transcriber=transcriber).to_dict()


@task(name="refresh-voice", persist_result=True)
def refresh_voice(lake_url: str, owner_id: str, persona: str, train: bool = True) -> dict[str, Any]:
    """Version the persona's utterances and, on a new version, adapt and publish their voice model."""
    readable_failure_logs()  # also in a Dask worker, another process
    with persona_lock(owner_id, persona, open_storage(lake_url)):  # not during its restore or forget
        return _refresh_voice(lake_url, owner_id, persona, train)


def _refresh_voice(lake_url: str, owner_id: str, persona: str, train: bool) -> dict[str, Any]:
    from tasks.voice.recordings import build_voice_dataset
    from tasks.voice.voice_gate import finish_promotion
    from tasks.voice.voice_model import MIN_TRANSCRIBED, train_user_voice

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
        elif train:  # trained before: finish a production move a killed pass may have lost
            finish_promotion(storage, owner_id, persona)
    except InputError as exc:
        return {"owner_id": owner_id, "persona": persona, "status": "skipped", "reason": str(exc)}
    return out


@task(name="restore-voice", persist_result=True, **RETRY)
def restore_voice_task(
    lake_url: str, owner_id: str, persona: str, names: list[str], audio: list[str]
) -> dict[str, Any]:
    """Uploaded audio (a `.txt` beside a file is its transcript) + KakaoTalk voice messages -> dataset."""
    from tasks.voice.asr import load_transcriber
    from tasks.voice.recordings import restore_voice
    from tasks.voice.voice_gate import finish_promotion

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
    result = restore_voice(storage, owner_id, persona, names, files, transcriber=transcriber)
    if result["dataset"] and not result["dataset"]["created"]:  # a re-run: finish a lost production move
        finish_promotion(storage, owner_id, persona)
    return result


@task(name="train-voice", persist_result=True)
def train_voice_task(
    lake_url: str, owner_id: str, persona: str, dataset_version: int, steps: int | None = None
) -> dict[str, Any]:
    """Adapt the newest voice base to one persona's transcribed utterances; publish (parity-checked)."""
    from tasks.voice.voice_model import train_user_voice

    steps = steps or Settings().train_max_steps
    return train_user_voice(open_storage(lake_url), owner_id, persona, dataset_version, steps)
