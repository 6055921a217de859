"""Notifications: the automations of `automations.yaml`, a notification block, and a local receiver.

Production points the `rememberme-alerts` block at its channel (a custom webhook here; Slack,
Teams or e-mail blocks take the same `send-notification` actions). The rehearsal points it at
`WebhookReceiver`, a tiny HTTP server in its own process, and shows the notifications arrive.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from infra.production.api import PrefectApi
from infra.production.processes import RehearsalError

AUTOMATIONS = Path(__file__).with_name("automations.yaml")
BLOCK_NAME = "rememberme-alerts"
#: Stands in `automations.yaml` for the notification block's id (known once the block exists).
BLOCK_PLACEHOLDER = "{{ notify_block_id }}"


@dataclass
class Notification:
    """One notification as it arrived: when, and the JSON the block sent."""

    at: float
    subject: str
    body: str


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    received: list[Notification] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        """Listen on a free port (a daemon thread); returns the URL to post to."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    data = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    data = {"body": raw.decode("utf-8", "replace")}
                receiver.received.append(
                    Notification(time.time(), str(data.get("subject", "")), str(data.get("body", "")))
                )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the rehearsal prints what arrived

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/notify"

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(
        self, predicate: Callable[[Notification], bool], timeout_s: float, what: str
    ) -> Notification:
        """The first notification `predicate` accepts, waiting up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for note in list(self.received):
                if predicate(note):
                    return note
            time.sleep(0.5)
        raise RehearsalError(f"no notification {what} within {timeout_s:.0f}s")


def create_webhook_block(api: PrefectApi, url: str, name: str = BLOCK_NAME) -> str:
    """A `custom-webhook` notification block posting `{subject, body}` as JSON to `url`; its id."""
    block_type = api.call("GET", "/block_types/slug/custom-webhook")
    schemas = api.call(
        "POST", "/block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}}
    )
    if not schemas:
        raise RehearsalError("the Prefect server has no custom-webhook block schema")
    data = {
        "name": name,
        "url": url,
        "method": "POST",
        "json_data": {"subject": "{{subject}}", "body": "{{body}}"},
        "timeout": 10,
        "allow_private_urls": True,
    }
    body = {
        "name": name,
        "block_type_id": block_type["id"],
        "block_schema_id": schemas[0]["id"],
        "data": data,
    }
    created = api.call("POST", "/block_documents/", body)
    return str(created["id"])


def automation_specs(block_id: str, path: Path = AUTOMATIONS) -> list[dict[str, Any]]:
    """The declared automations with the notification block's id filled in."""
    text = path.read_text(encoding="utf-8").replace(BLOCK_PLACEHOLDER, block_id)
    specs: list[dict[str, Any]] = yaml.safe_load(text)["automations"]
    return specs


def create_automations(api: PrefectApi, block_id: str, path: Path = AUTOMATIONS) -> list[str]:
    """Create (or replace, by name) every declared automation; their names."""
    existing = {a["name"]: a["id"] for a in api.call("POST", "/automations/filter", {})}
    names = []
    for spec in automation_specs(block_id, path):
        if spec["name"] in existing:
            api.call("DELETE", f"/automations/{existing[spec['name']]}")
        api.call("POST", "/automations/", spec)
        names.append(str(spec["name"]))
    return names
