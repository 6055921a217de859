"""The voice path, as subflows: one run in the UI for instant restore's voice, one for recycling's.

Wiring only. `voice-restore`: uploaded audio + the persona's KakaoTalk voice messages ->
utterances -> voice dataset -> (enough words) voice model -> its curve and card.
`voice-recycling`: every owner's new platform recordings -> utterances -> each consenting
persona's voice dataset -> voice models where the dataset changed.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped

from flows.runners import recycling_task_runner
from tasks.runs.artifacts import report_published, report_training
from tasks.runs.fanout import gather, without_failed_owners
from tasks.runs.retries import RetryItem
from tasks.runs.run_logs import readable_failure_logs
from tasks.voice.prefect_tasks import preprocess_voice, refresh_voice, restore_voice_task, train_voice_task
from tasks.voice.voice_model import MIN_TRANSCRIBED


@flow(name="voice-restore", log_prints=True)
def voice_restore(
    lake_url: str,
    owner_id: str,
    persona: str,
    names: list[str],
    audio: list[str],
    train: bool = True,
    train_steps: int | None = None,
) -> dict[str, Any]:
    """A persona's voice from an instant restore's uploads; returns the summary, dataset and model."""
    result = restore_voice_task(lake_url, owner_id, persona, names, audio)
    dataset = result["dataset"]
    result["model_version"] = None
    if dataset and dataset["created"] and dataset["with_transcript"] >= MIN_TRANSCRIBED and train:
        manifest = train_voice_task(lake_url, owner_id, persona, dataset["version"], train_steps)
        report_training(manifest)
        result["model_version"] = manifest["version"]
        # Whether it sounds like them (the voice gate): a refused voice is kept, with its card, not served.
        result["model_served"] = bool(manifest.get("promotion", {}).get("promote", True))
        result["model_verdict"] = manifest.get("promotion", {}).get("reason")
    elif dataset and dataset["with_transcript"] < MIN_TRANSCRIBED:
        result["model_skipped"] = (
            f"fewer than {MIN_TRANSCRIBED} transcribed utterances: no voice model trained"
        )
    return result


@flow(name="voice-recycling", log_prints=True, task_runner=recycling_task_runner())
def voice_recycling(
    lake_url: str, owners: list[str], voices: list[tuple[str, str]], train: bool = True
) -> dict[str, Any]:
    """Preprocess `owners`' new recordings, then refresh each (owner, persona) voice in `voices`.

    One owner's or persona's failure is theirs alone: it is returned in `failed` (with every piece
    run in `attempted`) for the recycling state, and the others go on.
    """
    readable_failure_logs()
    prep = [RetryItem("voice-prep", owner) for owner in owners]
    processed, prep_failed = gather(preprocess_voice.map(unmapped(lake_url), owners), prep)
    ready = without_failed_owners(voices, prep_failed)
    pieces = [RetryItem("voice", owner, persona) for owner, persona in ready]
    refreshed, voice_failed = gather(
        refresh_voice.map(unmapped(lake_url), [o for o, _ in ready], [p for _, p in ready], unmapped(train)),
        pieces,
    )
    report_published(refreshed)
    return {
        "utterances": sum(v["segments_kept"] for v in processed),
        "quarantined": sum(v["quarantined"] for v in processed),
        "models_published": sum(1 for v in refreshed if v.get("model_version")),
        "attempted": [piece.key for piece in prep + pieces],
        "failed": prep_failed + voice_failed,
    }
