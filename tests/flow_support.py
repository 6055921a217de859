"""What the end-to-end flow tests share: reading a run back from the Prefect API, the lake's final state."""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any
from uuid import UUID

import pyarrow.parquet as pq

from infra.search import connect
from infra.storage import Storage
from schemas.search import MESSAGES_ALIAS


def artifacts_of(flow_run_id: UUID | None) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id] if flow_run_id else [])
            )
        )


def subflows_of(flow_run_id: UUID | None) -> dict[str, Any]:
    """Flow name -> the child flow run of `flow_run_id` (the voice path runs as a subflow)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id] if flow_run_id else [])
            )
        )
        return {client.read_flow(r.flow_id).name: r for r in runs}


def task_states(flow_run_id: UUID | None) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id] if flow_run_id else []))
        )
    return {r.name.rsplit("-", 1)[0]: r.state_name or "" for r in runs}


def indexed_count(es_url: str, owner: str) -> int:
    client = connect(es_url)
    client.indices.refresh(index=MESSAGES_ALIAS)
    return int(client.count(index=MESSAGES_ALIAS, query={"term": {"owner_id": owner}})["count"])


def recycle(lake: str, as_of: date, **kwargs: Any) -> Any:
    from flows.recycle import data_recycling

    return data_recycling(as_of=as_of, lake_url=lake, vectors=False, **{"train": False, **kwargs})


def lake_snapshot(storage: Storage) -> dict[str, Any]:
    """Every Message row per owner (sorted ids) plus the recycling state: the final state to compare."""
    out: dict[str, Any] = {}
    for key in storage.list("messages/"):
        rows = pq.read_table(io.BytesIO(storage.read_bytes(key))).to_pylist()
        owner = key.split("/")[1]
        out.setdefault(owner, []).extend((r["message_id"], r["speaker"], r["text"]) for r in rows)
    state = json.loads(storage.read_bytes("state/watermarks.json"))
    return {"rows": {k: sorted(v) for k, v in out.items()}, "state": state}
