"""Forget, last step: Prefect's own memory of a subject (runs, results, artifacts, logs, events).

Prefect keeps what flows did: flow-run parameters (owner, persona name, upload path), persisted
task results (manifests, summaries), artifacts, log lines and events. A forget must reach them:

- flow runs whose parameters name the subject are deleted through the API (their task runs and
  states go with them), with the result files their task runs persisted;
- artifacts of those runs, and any other artifact whose text names the subject, are deleted;
- result files in the local result store whose (decoded) content names the subject are deleted;
- on the embedded SQLite database, log lines and events of those runs or naming the subject
  are deleted and the file is vacuumed, so the deleted rows do not linger in free pages. A
  production Postgres database is the operator's (its log retention and VACUUM); the receipt
  says when the database was not a local SQLite file.

"Names the subject": a flow run whose `owner_id` parameter is the owner (and, for one persona,
one of whose parameters is one of its names or ids), compared exactly; a text that holds the owner
id as a whole token (never inside another owner's id: forgetting owner `a` leaves `demo` alone)
and, for one persona, one of its names.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import re
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

_PAGE = 200


@dataclass
class HistoryForget:
    """What was removed from Prefect's memory."""

    flow_runs: int = 0
    flow_runs_edited: int = 0  # runs of several owners whose parameters named the subject
    artifacts: int = 0
    result_files: int = 0
    log_lines: int = 0
    events: int = 0
    database: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class Mentions:
    """Whether a text names the subject: the owner id, and (one persona) one of its names."""

    owner_id: str
    names: tuple[str, ...] = ()

    def __call__(self, text: str) -> bool:
        """True if `text` holds the owner id as a whole token and (one persona) one of its names."""
        if self.owner_id not in text or not _token(self.owner_id).search(text):
            return False
        # JSON columns may hold a name escaped (`\uc5c4`): look for both spellings.
        return not self.names or any(n in text or json.dumps(n)[1:-1] in text for n in self.names)

    def run(self, parameters: dict[str, Any]) -> bool:
        """True if a flow run's parameters are the subject's: its owner exactly, one of its names exactly."""
        if parameters.get("owner_id") != self.owner_id:
            return False
        values = [v for value in parameters.values() for v in (value if isinstance(value, list) else [value])]
        return not self.names or any(isinstance(v, str) and v in self.names for v in values)

    def in_bytes(self, data: bytes) -> bool:
        """`__call__` over bytes, decoding a JSON result file's base64 payload too."""
        views = [data.decode("utf-8", "replace")]
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            payload = json.loads(data)
            if isinstance(payload, dict) and isinstance(payload.get("result"), str):
                with contextlib.suppress(binascii.Error, ValueError):
                    views.append(base64.b64decode(payload["result"]).decode("utf-8", "replace"))
        return any(self(v) for v in views)


@functools.lru_cache(maxsize=64)
def _token(owner_id: str) -> re.Pattern[str]:
    """The owner id where no character of an owner id (letters, digits, `_`, `.`, `-`) touches it."""
    return re.compile(rf"(?<![A-Za-z0-9_.\-]){re.escape(owner_id)}(?![A-Za-z0-9_\-]|\.[A-Za-z0-9_\-])")


def forget_history(mentions: Mentions, keep_flow_run: UUID | None = None) -> HistoryForget:
    """Remove what Prefect holds about the subject (the running forget's own run is kept)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    # Log lines and events are sent in the background: let what is queued land first, or it
    # would arrive after the purge and stay.
    EventsWorker.drain_all(timeout=30)
    APILogWorker.drain_all(timeout=30)
    _wait_for_event_persister()
    out = HistoryForget()
    with get_client(sync_client=True) as client:
        runs: list[UUID] = []
        offset = 0
        while page := client.read_flow_runs(limit=_PAGE, offset=offset):
            offset += len(page)
            for run in page:
                if run.id == keep_flow_run:
                    continue
                if mentions.run(run.parameters):
                    runs.append(run.id)
                elif (shared := _blank_exact(run.parameters, mentions)) != run.parameters:
                    # A run of several owners (a recycling pass) stays theirs: the subject leaves it.
                    client.update_flow_run(run.id, parameters=shared)
                    out.flow_runs_edited += 1
        result_keys: set[str] = set()
        for start in range(0, len(runs), _PAGE):
            chunk = FlowRunFilter(id=FlowRunFilterId(any_=runs[start : start + _PAGE]))
            task_offset = 0
            while tasks := client.read_task_runs(flow_run_filter=chunk, limit=_PAGE, offset=task_offset):
                task_offset += len(tasks)
                result_keys.update(k for t in tasks if (k := _storage_key(t.state)))
        doomed = set(runs)
        offset = 0
        artifacts = []
        while found := client.read_artifacts(limit=_PAGE, offset=offset):
            offset += len(found)
            for artifact in found:
                text = json.dumps([artifact.key, artifact.description, artifact.data], ensure_ascii=False,
                                  default=str)  # fmt: skip
                if artifact.flow_run_id in doomed or mentions(text):
                    artifacts.append(artifact.id)
        for artifact_id in artifacts:
            with contextlib.suppress(Exception):  # deleted meanwhile: nothing left to do
                client.delete_artifact(artifact_id)
                out.artifacts += 1
        for run_id in runs:
            with contextlib.suppress(Exception):
                client.delete_flow_run(run_id)
                out.flow_runs += 1
        if keep_flow_run is not None:  # the forget's own run keeps the owner, not the names
            own = client.read_flow_run(keep_flow_run).parameters
            blanked = _blank(own, mentions)
            if blanked != own:
                client.update_flow_run(keep_flow_run, parameters=blanked)
    out.result_files = _forget_results(mentions, result_keys)
    out.log_lines, out.events, out.database = _forget_in_database(mentions, runs)
    return out


def _wait_for_event_persister() -> None:
    """The API writes events in batches: wait one flush so none lands after the purge."""
    from prefect.settings import get_current_settings

    time.sleep(float(get_current_settings().server.services.event_persister.flush_interval) + 1.0)


def _blank(value: Any, mentions: Mentions) -> Any:
    """`value` with any text holding one of the subject's names replaced by `<forgotten>`."""
    if isinstance(value, dict):
        return {k: _blank(v, mentions) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_blank(v, mentions) for v in value]
    if isinstance(value, str) and any(n in value for n in mentions.names):
        return "<forgotten>"
    return value


def _blank_exact(value: Any, mentions: Mentions, nested: bool = False) -> Any:
    """`value` without the subject, compared exactly.

    The owner id (a whole owner), or a persona's name where it stands beside the owner id in an
    `(owner, persona)` pair (a list within a list, as recycling's `voices`).
    """
    if isinstance(value, dict):
        return {k: _blank_exact(v, mentions) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if nested and mentions.owner_id in value:
            doomed = mentions.names or tuple(value)
            return ["<forgotten>" if v in doomed else v for v in value]
        return [_blank_exact(v, mentions, nested=True) for v in value]
    return "<forgotten>" if not mentions.names and value == mentions.owner_id else value


def _storage_key(state: Any) -> str | None:
    data = getattr(state, "data", None) if state is not None else None
    if isinstance(data, dict):
        key = data.get("storage_key")
        return str(key) if key else None
    key = getattr(data, "storage_key", None)
    return str(key) if key else None


def _result_dir() -> Path:
    from prefect.settings import get_current_settings

    return Path(get_current_settings().results.local_storage_path).expanduser()


def _forget_results(mentions: Mentions, keys: set[str]) -> int:
    """Delete the runs' result files and any local result file naming the subject."""
    root = _result_dir()
    doomed = {Path(k) if Path(k).is_absolute() else root / k for k in keys}
    if root.is_dir():
        for path in root.rglob("*"):
            if path.is_file() and path not in doomed:
                with contextlib.suppress(OSError):
                    if mentions.in_bytes(path.read_bytes()):
                        doomed.add(path)
    removed = 0
    for path in doomed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def sqlite_path() -> Path | None:
    """The embedded API database file, if Prefect's database is a local SQLite file."""
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    text = url.get_secret_value() if url is not None else ""
    if not text.startswith("sqlite") or ":memory:" in text:
        return None
    path = Path(text.split(":///", 1)[1].split("?", 1)[0])
    return path if path.exists() else None


def _forget_in_database(mentions: Mentions, runs: list[UUID]) -> tuple[int, int, str]:
    """Log lines and events of the runs or naming the subject; then VACUUM the file.

    The API persists events in the background (its own ones too, e.g. for artifacts), so one
    sweep is not the end: sweeps repeat one persister flush apart until one finds nothing.
    """
    path = sqlite_path()
    if path is None:
        return 0, 0, "not a local SQLite file: log retention and VACUUM are the operator's"
    run_ids = {str(r) for r in runs}
    resources = {f"prefect.flow-run.{r}" for r in run_ids}
    con = sqlite3.connect(path, timeout=60)
    try:
        con.create_function("names_subject", 1, lambda text: int(bool(text) and mentions(str(text))))
        con.create_function("run_of", 1, lambda rid: int(str(rid) in run_ids))
        con.create_function("doomed_resource", 1, lambda rid: int(str(rid) in resources))
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        logs, events = _sweep(con, tables)
        for _ in range(5):
            _wait_for_event_persister()
            more_logs, more_events = _sweep(con, tables)
            logs, events = logs + more_logs, events + more_events
            if not more_logs and not more_events:
                break
        con.execute("VACUUM")
        # Old page images of deleted rows also sit in the write-ahead log until it is
        # checkpointed; the server's own readers can keep it busy for a moment.
        for _ in range(50):
            with contextlib.suppress(sqlite3.OperationalError):
                busy = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy or busy[0] == 0:
                    break
            time.sleep(0.2)
    finally:
        con.close()
    return logs, events, str(path)


def _sweep(con: sqlite3.Connection, tables: set[str]) -> tuple[int, int]:
    """One pass over log lines and events (the SQL functions are registered on `con`)."""
    logs = events = 0
    if "log" in tables:
        logs = con.execute("DELETE FROM log WHERE run_of(flow_run_id) OR names_subject(message)").rowcount
    if "events" in tables:
        doomed = [
            row[0]
            for row in con.execute(
                "SELECT id FROM events WHERE doomed_resource(resource_id) OR names_subject(payload) "
                "OR names_subject(resource) OR names_subject(related)"
            )
        ]
        if "event_resources" in tables:
            query = "SELECT event_id FROM event_resources WHERE doomed_resource(resource_id)"
            doomed += [row[0] for row in con.execute(query)]
        for start in range(0, len(doomed), 500):
            chunk = doomed[start : start + 500]
            marks = ",".join("?" * len(chunk))
            events += con.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk).rowcount
            if "event_resources" in tables:
                con.execute(f"DELETE FROM event_resources WHERE event_id IN ({marks})", chunk)
    con.commit()
    return logs, events
