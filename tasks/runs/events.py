"""Prefect events the pipeline emits for operators' automations (infra/production/automations.yaml).

`rememberme.recycling.piece.parked`: a recycling pass has just parked a piece (it failed
`MAX_ATTEMPTS` passes in a row and is no longer retried by itself). One event per piece and pass
that parked it, not per pass that keeps reporting it, so a notification says something new.
"""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event
from prefect.runtime import flow_run

from tasks.runs.fanout import describe
from tasks.runs.retries import RetryItem

PARKED_EVENT = "rememberme.recycling.piece.parked"


def parked_now(failed: list[RetryItem], recorded: list[dict[str, Any]]) -> list[RetryItem]:
    """The pieces of `recorded` (the ledger after a pass) that are parked and failed in this pass."""
    failed_keys = {piece.key for piece in failed}
    pieces = [RetryItem.from_dict(item) for item in recorded if item.get("parked")]
    return [piece for piece in pieces if piece.key in failed_keys]


def parked_event(piece: RetryItem, flow_run_id: str | None) -> dict[str, Any]:
    """The event's fields (for `prefect.events.emit_event`): the piece as resource, the run related."""
    related = [
        {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}", "prefect.resource.role": "flow-run"}
    ]
    return {
        "event": PARKED_EVENT,
        "resource": {
            "prefect.resource.id": f"rememberme.piece.{piece.key}",
            "prefect.resource.name": describe(piece),
        },
        "related": related if flow_run_id else [],
        "payload": {
            "work": piece.work,
            "owner_id": piece.owner_id,
            "persona": piece.persona,
            "attempts": piece.attempts,
            "error": piece.error,
            "first_failed": piece.first_failed,
            "last_failed": piece.last_failed,
        },
    }


def announce_parked(failed: list[RetryItem], recorded: list[dict[str, Any]]) -> list[str]:
    """Emit one parked event per piece this pass parked; their descriptions."""
    run_id = str(flow_run.get_id() or "") or None
    pieces = parked_now(failed, recorded)
    for piece in pieces:
        emit_event(**parked_event(piece, run_id))
    return [describe(piece) for piece in pieces]
