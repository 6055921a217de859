"""instant_restore: one user upload -> lake -> quality-gated dataset -> index -> (model) -> publish.

Wiring only; each step is a task in tasks/steps.py over a plain function.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from infra.settings import Settings
from tasks.artifacts import artifact_key, report_dataset, report_index, report_ingest, report_markdown
from tasks.locks import persona_lock
from tasks.reports import restore_markdown
from tasks.steps import build_persona_dataset, index_owner, ingest_upload, quiet_expected_errors

TRAINING_PENDING = (
    "not run yet: per-persona models land with the persona-models issue; this restore ends after indexing"
)


@flow(name="instant-restore", log_prints=True, persist_result=True)
def instant_restore(
    owner_id: str,
    persona: str,
    sources: list[str],
    aliases: list[str] | None = None,
    lake_url: str | None = None,
    index: bool = True,
    vectors: bool | None = None,
) -> dict[str, Any]:
    """Restore `persona` for `owner_id` from KakaoTalk exports (local paths or lake keys)."""
    quiet_expected_errors()
    settings = Settings()
    lake = lake_url or settings.lake_url
    with persona_lock(owner_id, persona):
        ingests = [ingest_upload(source, owner_id, lake) for source in sources]
        report_ingest(owner_id, ingests)
        dataset = build_persona_dataset(lake, owner_id, persona, aliases or [])
        report_dataset(dataset)
        indexed = None
        if index:
            use_vectors = settings.index_vectors if vectors is None else vectors
            indexed = index_owner(lake, owner_id, None, use_vectors)
            report_index([indexed], owner_id)
        summary = restore_markdown(owner_id, persona, ingests, dataset, indexed, TRAINING_PENDING)
        report_markdown(summary, artifact_key("restore", owner_id, persona), "Instant restore")
    return {
        "owner_id": owner_id,
        "persona": persona,
        "messages": sum(s.messages for s in ingests),
        "dataset": dataset.to_dict(),
        "indexed": indexed.indexed if indexed else None,
        "training": TRAINING_PENDING,
    }
