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
from tasks.artifacts import artifact_key, report_index, report_markdown, report_published, report_table
from tasks.steps import (
    commit_watermark,
    index_owner,
    plan_recycling,
    quiet_expected_errors,
    refresh_persona,
    route_to_owners,
    stage_landing_file,
)


@flow(name="data-recycling", log_prints=True, task_runner=recycling_task_runner())
def data_recycling(
    as_of: date | None = None,
    lake_url: str | None = None,
    index: bool = True,
    vectors: bool | None = None,
    train: bool = True,
) -> dict[str, Any]:
    """One incremental pass over the platform's landing data (as of `as_of`, default today UTC)."""
    quiet_expected_errors()
    settings = Settings()
    lake = lake_url or settings.lake_url
    day = as_of or datetime.now(UTC).date()
    plan = plan_recycling(lake, day, settings.recycle_lookback_days)
    staged = stage_landing_file.map(unmapped(lake), plan.chat_files)
    routed = route_to_owners(lake, plan, staged.result())
    by_owner = routed.parts_by_owner()
    indexed = []
    if index and by_owner:
        use_vectors = settings.index_vectors if vectors is None else vectors
        indexed = index_owner.map(
            unmapped(lake), list(by_owner), list(by_owner.values()), unmapped(use_vectors)
        ).result()
        report_index(indexed, "recycling")
    voice_owners = sorted({owner for owner, _, _ in routed.voice})
    voices = sorted({(c.owner_id, c.persona) for c in plan.consents if c.owner_id in voice_owners})
    voiced = voice_recycling(lake, voice_owners, voices, train) if voice_owners else None
    personas = routed.personas()
    refreshed = refresh_persona.map(
        unmapped(lake), [o for o, _ in personas], [p for _, p in personas], unmapped(train)
    ).result()
    report_published(refreshed)
    if refreshed:
        report_table(refreshed, artifact_key("recycling-personas"), "Personas refreshed by recycling")
    state = commit_watermark(lake, plan, routed)
    summary = {
        "as_of": day.isoformat(),
        "chat_files": len(plan.chat_files),
        "voice_files": len(plan.voice_files),
        "voice_utterances": voiced["utterances"] if voiced else 0,
        "voice_quarantined": voiced["quarantined"] if voiced else 0,
        "voice_models_published": voiced["models_published"] if voiced else 0,
        "events_staged": sum(s.events for s in staged.result()),
        "lines_quarantined": sum(s.quarantined for s in staged.result()),
        **routed.summary(),
        "indexed": sum(i.indexed for i in indexed),
        "personas_built": sum(1 for r in refreshed if r["status"] == "built"),
        "models_published": sum(1 for r in refreshed if r.get("model_version")),
        "watermark": state["streams"],
    }
    lines = ["# Data recycling", "", *(f"- {k}: {v}" for k, v in summary.items())]
    report_markdown("\n".join(lines), artifact_key("recycling"), "Data recycling pass")
    return summary
