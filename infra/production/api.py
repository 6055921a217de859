"""The Prefect REST API as the platform backend calls it: JSON over HTTP with the server's auth string.

A server started with `PREFECT_SERVER_API_AUTH_STRING` answers 401 to any request without
`Authorization: Basic base64(<auth string>)` (prefect/server/api/server.py); Prefect's own
clients send it from `PREFECT_API_AUTH_STRING`. Nothing here imports Prefect: this is what any
backend in any language sends.
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.production.processes import RehearsalError

#: Flow-run state types after which nothing more happens to a run.
FINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


@dataclass(frozen=True)
class PrefectApi:
    """One Prefect server's API (`http://host:port/api`) and the auth string it expects."""

    url: str
    auth: str

    def headers(self) -> dict[str, str]:
        """What every request carries: JSON, and Basic auth with the auth string."""
        token = base64.b64encode(self.auth.encode("utf-8")).decode("ascii")
        return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None, patience_s: float = 60.0) -> Any:
        """One request; 503s and refused connections (a database restarting) are retried for `patience_s`."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        deadline = time.monotonic() + patience_s
        while True:
            request = urllib.request.Request(
                self.url + path, data=data, method=method, headers=self.headers()
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:  # our own local server
                    raw = response.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as exc:
                if exc.code not in (502, 503) or time.monotonic() > deadline:
                    detail = exc.read().decode("utf-8", "replace")[:300]
                    raise RehearsalError(f"{method} {path}: HTTP {exc.code} {detail}") from None
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise RehearsalError(f"{method} {path}: {exc}") from None
            time.sleep(1.0)


def deployment(api: PrefectApi, name: str) -> dict[str, Any]:
    """A deployment by `flow-name/deployment-name`."""
    found: dict[str, Any] = api.call("GET", f"/deployments/name/{name}")
    return found


def create_run(
    api: PrefectApi, deployment_name: str, parameters: dict[str, Any], tags: Iterable[str] = ()
) -> dict[str, Any]:
    """Create a flow run of a deployment, as the platform backend does; the worker picks it up."""
    target = deployment(api, deployment_name)
    body = {"parameters": parameters, "tags": ["rehearsal", *tags]}
    run: dict[str, Any] = api.call("POST", f"/deployments/{target['id']}/create_flow_run", body)
    return run


def flow_run(api: PrefectApi, run_id: str, patience_s: float = 60.0) -> dict[str, Any]:
    """The flow run as the API has it now."""
    found: dict[str, Any] = api.call("GET", f"/flow_runs/{run_id}", patience_s=patience_s)
    return found


def state_type(run: dict[str, Any]) -> str:
    """`COMPLETED`, `RUNNING`, ... of a flow run ('' without a state)."""
    return str((run.get("state") or {}).get("type") or "")


def wait_for(
    api: PrefectApi, run_id: str, types: Iterable[str] = FINAL, timeout_s: float = 600.0
) -> dict[str, Any]:
    """Poll a flow run until its state type is one of `types` (polls ride out API outages)."""
    wanted = set(types)
    deadline = time.monotonic() + timeout_s
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            run = flow_run(api, run_id, patience_s=5.0)
        except RehearsalError:
            time.sleep(1.0)
            continue
        if state_type(run) in wanted:
            return run
        if state_type(run) in FINAL:  # ended otherwise: no point waiting
            return run
        time.sleep(1.0)
    raise RehearsalError(
        f"flow run {run.get('name', run_id)} still {state_type(run) or 'unknown'} after {timeout_s:.0f}s"
    )


def run_seconds(run: dict[str, Any]) -> float | None:
    """Seconds from the run's start to its end (what the UI calls its duration)."""
    start, end = run.get("start_time"), run.get("end_time")
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def state_message(run: dict[str, Any]) -> str:
    """The one-line message of a run's state."""
    message = str((run.get("state") or {}).get("message") or "")
    return message.strip().splitlines()[0] if message.strip() else ""


def retry(api: PrefectApi, run_id: str) -> None:
    """Run a finished flow run again, as the UI's Retry does: back to Scheduled (AwaitingRetry)."""
    state = {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retried by the rehearsal"}
    api.call("POST", f"/flow_runs/{run_id}/set_state", {"state": state, "force": True})


def logs(api: PrefectApi, run_id: str) -> list[str]:
    """The run's log lines, oldest first."""
    out: list[str] = []
    while True:
        body = {
            "logs": {"flow_run_id": {"any_": [run_id]}},
            "sort": "TIMESTAMP_ASC",
            "offset": len(out),
            "limit": 200,
        }
        page = api.call("POST", "/logs/filter", body)
        out += [str(entry["message"]) for entry in page]
        if len(page) < 200:
            return out


def result_summary(api: PrefectApi, run_id: str) -> str:
    """The markdown artifacts a run published (its summary as the UI shows it)."""
    body = {"artifacts": {"flow_run_id": {"any_": [run_id]}, "type": {"any_": ["markdown"]}}}
    found = api.call("POST", "/artifacts/filter", body)
    return "\n".join(str(a.get("data") or "") for a in found)


def workers(api: PrefectApi, pool: str) -> list[dict[str, Any]]:
    """The workers that polled `pool` recently (name, status, last heartbeat)."""
    found: list[dict[str, Any]] = api.call("POST", f"/work_pools/{pool}/workers/filter", {})
    return found
