"""Prefect tasks of the ingest stage: thin wrappers over the plain functions beside them."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from infra.settings import Settings
from infra.storage import open_storage
from infra.version import CODE_VERSION
from parsers.kakao.export import file_sha256
from tasks.ingest import recycling as recycle
from tasks.ingest.platform import StagedFile, stage_chat_file
from tasks.ingest.uploads import IngestSummary, completed_ingest, ingest_export
from tasks.runs.policy import RETRY, local_copy
from tasks.runs.retries import RetryItem


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


@task(name="ingest-upload", cache_key_fn=_ingest_cache_key, persist_result=True, **RETRY)
def ingest_upload(source: str, owner_id: str, lake_url: str, date_order: str | None = None) -> IngestSummary:
    """Parse one chat export into the owner's lake (resumes a finished upload)."""
    storage = open_storage(lake_url)
    with local_copy(source, storage) as path:
        return ingest_export(
            path, owner_id, storage, Settings(), display_name=Path(source).name, date_order=date_order
        )


@task(name="plan-recycling", **RETRY)
def plan_recycling(
    lake_url: str, as_of: date, lookback_days: int, retry_parked: bool = False
) -> recycle.RecyclePlan:
    """What is new since the watermark, which consents hold, which failed pieces to do again."""
    return recycle.plan_pass(open_storage(lake_url), as_of, lookback_days, retry_parked)


@task(name="stage-landing-file", **RETRY)
def stage_landing_file(lake_url: str, key: str) -> StagedFile:
    """Parse one landing chat file and stage it per room."""
    from tasks.lifecycle.forget import forgotten_senders

    storage = open_storage(lake_url)
    return stage_chat_file(storage, key, forgotten_senders(storage))


@task(name="route-to-owners", **RETRY)
def route_to_owners(
    lake_url: str, plan: recycle.RecyclePlan, staged: list[StagedFile]
) -> recycle.RouteResult:
    """Copy staged events (and voice manifests) into each consenting owner's lake."""
    return recycle.route_pass(open_storage(lake_url), plan, staged)


@task(name="commit-watermark", **RETRY)
def commit_watermark(
    lake_url: str,
    plan: recycle.RecyclePlan,
    routed: recycle.RouteResult,
    attempted: list[str | RetryItem],
    failed: list[RetryItem],
) -> dict[str, Any]:
    """Advance the watermark after everything of the pass is written; record the failed pieces."""
    state = recycle.commit_pass(open_storage(lake_url), plan, routed, attempted, failed)
    return {
        "runs": state.runs,
        "streams": {k: v.through_dt for k, v in state.streams.items()},
        "failed": [item.to_dict() for item in state.failed.values()],
    }
