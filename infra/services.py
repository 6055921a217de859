"""Local stand-ins for cloud services, started on demand the way Prefect starts its ephemeral API.

Elasticsearch: when `REMEMBERME_ES_URL` is not set, an Elasticsearch-API server from PyPI
(`noida-db`, optional dependency) runs on 127.0.0.1 with its data under the project's state folder.
It is a dev/test stand-in (no nori, slow queries); production points `REMEMBERME_ES_URL` at a cluster.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from infra.settings import Settings


class ServiceError(Exception):
    """A local service could not be started, stopped or reached (one-line cause)."""


@dataclass(frozen=True)
class ServiceStatus:
    """What `services status` reports for one service."""

    name: str
    url: str
    running: bool
    managed: bool  # started by us (False: an external URL from settings)
    data_dir: str | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def _noida() -> str:
    candidate = Path(sys.executable).with_name("noida-db")
    found = str(candidate) if candidate.exists() else shutil.which("noida-db")
    if not found:
        raise ServiceError(
            "noida-db is not installed (pip install noida-db), and REMEMBERME_ES_URL is not set"
        )
    return found


def _answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # our own local URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class LocalElasticsearch:
    """The noida-db Elasticsearch API on 127.0.0.1, data under `data_dir`."""

    def __init__(self, data_dir: Path, port: int) -> None:
        """Manage the server whose state lives in `data_dir`, listening on `port`."""
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_noida(), *args, "--data-dir", str(self.data_dir)], capture_output=True, text=True, check=False
        )

    def up(self, timeout_s: float = 30.0) -> str:
        """Start (or find running) and wait until it answers; returns its URL."""
        if _answers(self.url):
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        result = self._run("up", "--only", "elasticsearch", "--elasticsearch-port", str(self.port))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if _answers(self.url):
                return self.url
            time.sleep(0.2)
        detail = (result.stderr or result.stdout).strip().splitlines()
        cause = next((line for line in reversed(detail) if "GLIBC" not in line), "no answer")
        raise ServiceError(
            f"local Elasticsearch API did not answer on {self.url} within {timeout_s:.0f}s ({cause})"
        )

    def down(self) -> None:
        """Stop it; its data stays in `data_dir`."""
        if self.data_dir.exists():
            self._run("down")

    def status(self) -> ServiceStatus:
        """Whether it answers now."""
        return ServiceStatus("elasticsearch", self.url, _answers(self.url), True, str(self.data_dir))


def local_elasticsearch(settings: Settings) -> LocalElasticsearch:
    """The project's local Elasticsearch stand-in, per settings."""
    return LocalElasticsearch(Path(settings.state_dir) / "elasticsearch", settings.local_es_port)


def elasticsearch_url(settings: Settings) -> str:
    """The configured cluster, or the local stand-in (started if needed)."""
    if settings.es_url:
        return settings.es_url
    return local_elasticsearch(settings).up()


def statuses(settings: Settings) -> list[ServiceStatus]:
    """Status of every service the pipeline uses."""
    if settings.es_url:
        es = ServiceStatus("elasticsearch", settings.es_url, _answers(settings.es_url), False, None)
    else:
        es = local_elasticsearch(settings).status()
    return [es]


def render(status: list[ServiceStatus]) -> str:
    """Human view of statuses."""
    return "\n".join(
        f"{s.name:14} {'up  ' if s.running else 'down'} {s.url}" + ("" if s.managed else " (external)")
        for s in status
    )


def as_json(status: list[ServiceStatus]) -> str:
    """One JSON document."""
    return json.dumps([s.to_dict() for s in status])
