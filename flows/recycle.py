"""data_recycling: platform data since the watermark -> owners' lakes -> index -> changed personas.

Scheduled (cron, see flows/serve.py). Work grows with the new landing files: only they are parsed,
only the message parts they produced are indexed, only personas whose rooms changed are rebuilt
(fanned out as mapped tasks; on a Dask cluster when REMEMBERME_DASK_ADDRESS is set). The
watermark moves in the last task, after every write of the pass.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, unmapped

from flows.runners import recycling_task_runner
from flows.voice import voice_recycling
from infra.settings import Settings
from infra.storage import open_storage
from tasks.indexing.indexer import IndexSummary
from tasks.indexing.prefect_tasks import index_owner
from tasks.ingest.prefect_tasks import commit_watermark, plan_recycling, route_to_owners, stage_landing_file
from tasks.lifecycle.locks import recycling_lock
from tasks.runs.artifacts import artifact_key, report_index, report_markdown, report_published, report_table
from tasks.runs.events import announce_parked
from tasks.runs.fanout import describe, gather, subflow_outcome
from tasks.runs.retries import RetryItem
from tasks.runs.run_logs import readable_failure_logs
from tasks.training.prefect_tasks import refresh_persona


@flow(name="data-recycling", log_prints=True, task_runner=recycling_task_runner())
def data_recycling(
    as_of: date | None = None,
    lake_url: str | None = None,
    index: bool = True,
    vectors: bool | None = None,
    train: bool = True,
    retry_failed: bool = False,
) -> dict[str, Any]:
    """One incremental pass over the platform's landing data (as of `as_of`, default today UTC).

    Each owner's indexing and each persona's text and voice refresh may fail alone: the pass
    completes, publishes what succeeded and records the failures (retried by the next passes;
    parked after 3 failures in a row until new data arrives or `retry_failed` is set).
    """
    readable_failure_logs()
    settings = Settings()
    lake = lake_url or settings.lake_url
    day = as_of or datetime.now(UTC).date()
    with recycling_lock(open_storage(lake)):  # one pass per lake at a time, whoever started it
        plan = plan_recycling(lake, day, settings.recycle_lookback_days, retry_failed)
        staged = stage_landing_file.map(unmapped(lake), plan.chat_files)
        routed = route_to_owners(lake, plan, staged.result())
        work = plan.work(routed)
        attempted: list[RetryItem] = []
        failed: list[RetryItem] = []
        indexed: list[IndexSummary] = []
        if index and work.index:
            use_vectors = settings.index_vectors if vectors is None else vectors
            pieces = work.index_pieces()
            futures = index_owner.map(
                unmapped(lake), list(work.index), list(work.index.values()), unmapped(use_vectors)
            )
            indexed, index_failed = gather(futures, pieces)
            attempted, failed = attempted + pieces, failed + index_failed
            report_index(indexed, "recycling")
        voiced: dict[str, Any] = {}
        if work.voice_owners or work.voices:
            voice_pieces = [RetryItem("voice-prep", o) for o in work.voice_owners]
            voice_pieces += [RetryItem("voice", o, p) for o, p in work.voices]
            voice_state = voice_recycling(lake, work.voice_owners, work.voices, train, return_state=True)
            voiced = subflow_outcome(voice_state, voice_pieces)
            failed += voiced["failed"]
        pieces = work.text_pieces()
        refreshed, text_failed = gather(
            refresh_persona.map(
                unmapped(lake),
                [o for o, _ in work.personas],
                [p for _, p in work.personas],
                unmapped(train),
                unmapped(index),
            ),
            pieces,
        )
        attempted, failed = attempted + pieces, failed + text_failed
        report_published(refreshed)
        if refreshed:
            report_table(refreshed, artifact_key("recycling-personas"), "Personas refreshed by recycling")
        done: list[str | RetryItem] = [
            *attempted,
            *voiced.get("attempted", []),
        ]  # index pieces with their parts
        state = commit_watermark(lake, plan, routed, done, failed)
        announce_parked(failed, state["failed"])  # operators' automations notify (a Prefect event)
        if state["failed"]:
            report_table(
                state["failed"], artifact_key("recycling-failures"), "Failed pieces: retried or parked"
            )
        summary = {
            "as_of": day.isoformat(),
            "chat_files": len(plan.chat_files),
            "voice_files": len(plan.voice_files),
            "voice_utterances": voiced.get("utterances", 0),
            "voice_quarantined": voiced.get("quarantined", 0),
            "voice_models_published": voiced.get("models_published", 0),
            "events_staged": sum(s.events for s in staged.result()),
            "lines_quarantined": sum(s.quarantined for s in staged.result()),
            **routed.summary(),
            "indexed": sum(i.indexed for i in indexed),
            "personas_built": sum(1 for r in refreshed if r["status"] == "built"),
            "models_published": sum(1 for r in refreshed if r.get("model_version")),
            "retried": len(plan.retry),
            "failed": [f"{describe(f)}: {f.error}" for f in failed],
            "parked": [describe(RetryItem.from_dict(f)) for f in state["failed"] if f["parked"]],
            "watermark": state["streams"],
        }
        lines = ["# Data recycling", "", *(f"- {k}: {v}" for k, v in summary.items())]
        report_markdown("\n".join(lines), artifact_key("recycling"), "Data recycling pass")
        return summary
