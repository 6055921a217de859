"""Mapped work in which one failure is nobody else's.

A flow that maps a task over owners or personas waits for every future, keeps the results of the
ones that completed and turns each failure into a `RetryItem` with its one-line cause (logged as
one warning line; the traceback went to the debug log, see tasks/runs/run_logs.py). Nothing raises:
the flow goes on with what succeeded and records the failures for the next pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger
from prefect.client.schemas.objects import State
from prefect.exceptions import MissingContextError
from prefect.futures import PrefectFuture

from tasks.runs.retries import RetryItem
from tasks.runs.run_logs import one_line

_WHAT = {
    "text": "text refresh",
    "voice": "voice refresh",
    "voice-prep": "voice preprocessing",
    "index": "indexing",
}


def describe(piece: RetryItem) -> str:
    """`text refresh of owner/persona` — how a piece is named in logs and tables."""
    who = f"{piece.owner_id}/{piece.persona}" if piece.persona else piece.owner_id
    return f"{_WHAT.get(piece.work, piece.work)} of {who}"


def failure_cause(state: State[Any]) -> str:
    """The one-line cause of a failed or crashed state."""
    try:
        outcome = state.result(raise_on_failure=False)
    except Exception as exc:  # the result itself could not be read back
        return one_line(exc)
    if isinstance(outcome, BaseException):
        return one_line(outcome)
    return (state.message or state.type.value)[:400]


def failed_piece(piece: RetryItem, cause: str) -> RetryItem:
    """`piece` marked failed with `cause`, logged as one line."""
    with contextlib.suppress(MissingContextError):  # outside a run (plain calls): nothing to log to
        get_run_logger().warning("%s failed; recorded for the next pass: %s", describe(piece), cause)
    return RetryItem(piece.work, piece.owner_id, piece.persona, list(piece.parts), cause)


def gather(
    futures: Sequence[PrefectFuture[Any]], pieces: Sequence[RetryItem]
) -> tuple[list[Any], list[RetryItem]]:
    """Wait for every future; the results that completed and the pieces that failed."""
    results: list[Any] = []
    failures: list[RetryItem] = []
    for future, piece in zip(futures, pieces, strict=True):
        future.wait()
        state = future.state
        if state.is_completed():
            results.append(future.result())
        else:
            failures.append(failed_piece(piece, failure_cause(state)))
    return results, failures


def without_failed_owners(
    voices: Sequence[tuple[str, str]], failed: Sequence[RetryItem]
) -> list[tuple[str, str]]:
    """The voices whose owner's preprocessing did not fail (theirs wait for the retried piece)."""
    broken = {piece.owner_id for piece in failed}
    return [(owner, persona) for owner, persona in voices if owner not in broken]


def subflow_outcome(state: State[Any], pieces: Sequence[RetryItem]) -> dict[str, Any]:
    """A fan-out subflow's result; if the subflow itself failed, every one of `pieces` failed."""
    if state.is_completed():
        result: dict[str, Any] = state.result()
        return result
    cause = failure_cause(state)
    return {"attempted": [p.key for p in pieces], "failed": [failed_piece(p, cause) for p in pieces]}
