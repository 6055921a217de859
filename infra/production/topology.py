"""The production topology of docker-compose.yml as local processes on 127.0.0.1, each a real server.

PostgreSQL 15 (a throw-away `initdb` cluster under the state folder) behind `prefect server start`
with `PREFECT_SERVER_API_AUTH_STRING`; the work pools and `prefect deploy --all` of
infra/prefect.yaml; a process worker on `rememberme-cpu` and one on `rememberme-gpu`; `dask
scheduler` and two `dask worker`s; the lake on the GCS emulator (`gs://`) and search on the
local Elasticsearch-API stand-in. Every process is the rehearsal's (infra/production/processes.py).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra.production.api import PrefectApi, workers
from infra.production.processes import Processes, RehearsalError, command_for, wait_until
from infra.services import LocalElasticsearch, LocalGcsEmulator, free_port

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("REMEMBERME_PG_BIN", "/usr/lib/postgresql/15/bin"))
BIN = Path(sys.executable).parent
BUCKET = "rememberme-rehearsal"
POOLS = {"rememberme-cpu": "cpu-worker", "rememberme-gpu": "gpu-worker"}
DASK_WORKERS = ("dask-worker-1", "dask-worker-2")


@dataclass
class Topology:
    """Where everything listens, and the processes behind it."""

    state: Path
    procs: Processes
    auth: str = "rememberme:rehearsal"
    ports: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    es: LocalElasticsearch | None = None
    gcs: LocalGcsEmulator | None = None
    #: The cluster's folder: `state/pg`, or a temporary one where the database user cannot reach it.
    pg: Path | None = None

    @property
    def api(self) -> PrefectApi:
        """The Prefect server's API, with the auth string."""
        return PrefectApi(f"http://127.0.0.1:{self.ports['prefect']}/api", self.auth)

    @property
    def ui_url(self) -> str:
        """The Prefect UI."""
        return f"http://127.0.0.1:{self.ports['prefect']}"

    @property
    def dask_address(self) -> str:
        """The Dask scheduler, as `REMEMBERME_DASK_ADDRESS` names it."""
        return f"tcp://127.0.0.1:{self.ports['dask']}"

    def lake(self, prefix: str = "lake") -> str:
        """A lake URL in the emulated bucket."""
        return f"gs://{BUCKET}/{prefix}"

    def db_url(self) -> str:
        """Prefect's database."""
        return f"postgresql+asyncpg://prefect@127.0.0.1:{self.ports['postgres']}/prefect"

    def client_env(self) -> dict[str, str]:
        """What every pipeline process gets (workers, their flow runs, Dask workers, the CLI)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REMEMBERME_"))}
        env.update(
            PREFECT_API_URL=self.api.url,
            PREFECT_API_AUTH_STRING=self.auth,
            PREFECT_HOME=str(self.state / "prefect"),
            PREFECT_LOCAL_STORAGE_PATH=str(self.state / "prefect" / "storage"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            GX_ANALYTICS_ENABLED="false",
            STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{self.ports['gcs']}",
            REMEMBERME_LAKE_URL=self.lake(),
            REMEMBERME_ES_URL=f"http://127.0.0.1:{self.ports['es']}",
            REMEMBERME_STATE_DIR=str(self.state / "pipeline"),
            # A database restarting answers 500 (asyncpg's refused connection is not one Prefect
            # marks retryable): clients retry those too, 5 times over about a minute, so a run
            # rides out a short outage instead of failing on its next state change or artifact.
            PREFECT_CLIENT_RETRY_EXTRA_CODES="500",
            # One compute thread per process: flow runs, both Dask workers and the CLI share two
            # cores here (in production each has its own machine); torch spinning a thread per core
            # in each of them runs slower than one thread each (as tests/conftest.py found).
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
        )
        env.update(self.extra_env)
        return env


def _pg(name: str) -> str:
    path = PG_BIN / name
    if not path.exists():
        raise RehearsalError(f"{path} not found: apt-get install postgresql (15), or set REMEMBERME_PG_BIN")
    return str(path)


def _pg_user() -> str | None:
    """PostgreSQL refuses to run as root: from root, the cluster is the `postgres` user's."""
    return "postgres" if os.geteuid() == 0 else None


def _reachable(path: Path) -> bool:
    """Whether any user may walk down to `path` (every folder above it searchable by others)."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.resolve().parents)


def init_postgres(top: Topology) -> None:
    """A fresh cluster (`initdb`, trust auth for user prefect) in `state/pg`, owned by its user.

    From root the cluster belongs to `postgres`, which must reach its folder: under a private
    folder (pytest's, mode 700) it goes to a temporary folder instead, removed by `down`.
    """
    user = _pg_user()
    if user and not _reachable(top.state):
        top.pg = Path(tempfile.mkdtemp(prefix="rememberme-rehearsal-pg-"))
    else:
        top.pg = top.state / "pg"
    top.pg.mkdir(parents=True, exist_ok=True)
    if user:
        shutil.chown(top.pg, user, user)
    argv = [_pg("initdb"), "-A", "trust", "-U", "prefect", "-E", "UTF8", "--locale=C.UTF-8",
            "-D", str(top.pg / "data")]  # fmt: skip
    done = subprocess.run(command_for(argv, user), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RehearsalError(f"initdb failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    top.ports["postgres"] = free_port()


def start_postgres(top: Topology, timeout_s: float = 30.0) -> None:
    """`postgres` on 127.0.0.1 (its socket in the cluster folder), once it accepts connections."""
    folder = top.pg or top.state / "pg"
    port = str(top.ports["postgres"])
    argv = [_pg("postgres"), "-D", str(folder / "data"), "-p", port, "-k", str(folder), "-h", "127.0.0.1"]
    top.procs.start("postgres", argv, os.environ, cwd=folder, user=_pg_user())

    def ready() -> bool:
        probe = [_pg("pg_isready"), "-h", "127.0.0.1", "-p", port, "-U", "prefect", "-q"]
        return subprocess.run(probe, check=False).returncode == 0

    wait_until(ready, timeout_s, "PostgreSQL accepting connections")


def create_database(top: Topology) -> None:
    """The `prefect` database in the fresh cluster."""
    port = str(top.ports["postgres"])
    argv = [_pg("createdb"), "-h", "127.0.0.1", "-p", port, "-U", "prefect", "prefect"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RehearsalError(f"createdb failed: {done.stderr.strip()}")


def stop_postgres(top: Topology) -> None:
    """Fast shutdown (SIGINT: active connections are cut, as when the database host goes away)."""
    import signal

    top.procs.stop("postgres", sig=signal.SIGINT, timeout_s=30.0)


def _answers(url: str, auth: PrefectApi | None = None) -> bool:
    headers = auth.headers() if auth else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_prefect_server(top: Topology, timeout_s: float = 120.0) -> None:
    """`prefect server start` on PostgreSQL with the auth string; waits for its health check."""
    top.ports["prefect"] = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(top.state / "prefect-server"),
        PREFECT_API_DATABASE_CONNECTION_URL=top.db_url(),
        PREFECT_SERVER_API_AUTH_STRING=top.auth,
        PREFECT_UI_API_URL=top.api.url,  # else the UI calls 127.0.0.1:4200
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    argv = [
        str(BIN / "prefect"),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(top.ports["prefect"]),
    ]
    top.procs.start("prefect-server", argv, env, cwd=top.state)
    deadline = time.monotonic() + timeout_s
    while not _answers(f"{top.api.url}/health"):
        if not top.procs.alive("prefect-server"):
            raise RehearsalError(
                f"Prefect server exited at start (see {top.procs.logs / 'prefect-server.log'})"
            )
        if time.monotonic() > deadline:
            raise RehearsalError(f"Prefect server did not answer within {timeout_s:.0f}s")
        time.sleep(0.3)


def start_lake_and_search(top: Topology) -> None:
    """The GCS emulator with the lake's bucket, and the Elasticsearch-API stand-in."""
    top.gcs = LocalGcsEmulator(top.state / "gcs", free_port())
    top.gcs.up()
    top.ports["gcs"] = top.gcs.port
    os.environ["STORAGE_EMULATOR_HOST"] = top.gcs.url  # the rehearsal writes uploads as the backend does
    request = urllib.request.Request(
        f"{top.gcs.url}/storage/v1/b?project=rememberme-rehearsal",
        data=json.dumps({"name": BUCKET}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    top.es = LocalElasticsearch(top.state / "elasticsearch", free_port())
    top.es.up(timeout_s=60.0)
    top.ports["es"] = top.es.port


def start_dask(top: Topology, timeout_s: float = 60.0) -> None:
    """`dask scheduler` and the two `dask worker`s (one thread each: the machine's two cores)."""
    top.ports["dask"] = free_port()
    argv = [
        str(BIN / "dask"),
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        str(top.ports["dask"]),
        "--no-dashboard",
    ]
    top.procs.start("dask-scheduler", argv, top.client_env(), cwd=ROOT)
    for name in DASK_WORKERS:
        start_dask_worker(top, name)
    wait_until(lambda: len(dask_workers(top)) == len(DASK_WORKERS), timeout_s, "two Dask workers registered")
    record_task_stream(top)


def record_task_stream(top: Topology) -> None:
    """Have the scheduler keep its task stream (which worker ran which task), as its dashboard would."""
    from distributed import Client

    with Client(top.dask_address, timeout=10) as client:  # type: ignore[no-untyped-call]
        client.get_task_stream(count=1)


def start_dask_worker(top: Topology, name: str) -> None:
    """One `dask worker` process (a nanny and its worker) named `name`."""
    env = top.client_env()
    argv = [str(BIN / "dask"), "worker", top.dask_address, "--name", name, "--nthreads", "1",
            "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"]  # fmt: skip
    top.procs.start(name, argv, env, cwd=ROOT)


def dask_workers(top: Topology) -> dict[str, str]:
    """Worker address -> name, as the scheduler knows them now."""
    from distributed import Client

    with Client(top.dask_address, timeout=10) as client:  # type: ignore[no-untyped-call]
        info = client.scheduler_info(n_workers=-1)
    return {address: str(w.get("name")) for address, w in info["workers"].items()}


def prefect_cli(
    top: Topology, *args: str, env: dict[str, str] | None = None, timeout_s: float = 180.0
) -> str:
    """Run `prefect --no-prompt ...` against the server from the repository root; its output."""
    done = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        env=env or top.client_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise RehearsalError(f"prefect {' '.join(args[:2])} failed: {' | '.join(tail)}")
    return done.stdout


def deploy(top: Topology) -> list[str]:
    """Work pools first, then `prefect deploy --all --prefect-file infra/prefect.yaml`; deployment names.

    REMEMBERME_DASK_ADDRESS is read when deploying (the recycling deployment's job variables);
    REMEMBERME_CODE_DIR is left to each worker (the pull step reads it when a run starts).
    """
    for pool in POOLS:
        prefect_cli(top, "work-pool", "create", pool, "--type", "process", "--overwrite")
    env = {**top.client_env(), "REMEMBERME_DASK_ADDRESS": top.dask_address}
    env.pop("REMEMBERME_CODE_DIR", None)
    prefect_cli(top, "deploy", "--all", "--prefect-file", "infra/prefect.yaml", env=env)
    found = top.api.call("POST", "/deployments/filter", {})
    names = {d["flow_id"]: d for d in found}
    flows = {f["id"]: f["name"] for f in top.api.call("POST", "/flows/filter", {})}
    return sorted(f"{flows[d['flow_id']]}/{d['name']}" for d in names.values())


def worker_env(top: Topology) -> dict[str, str]:
    """A process worker's environment: the pipeline's, the checkout as code dir, 30 s heartbeats."""
    return {
        **top.client_env(),
        "REMEMBERME_CODE_DIR": str(ROOT),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
    }


def start_worker(top: Topology, pool: str, timeout_s: float = 60.0) -> str:
    """`prefect worker start --pool POOL --type process`; waits until the pool lists it online."""
    name = POOLS[pool]
    started = time.time()
    argv = [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process", "--name", name]
    top.procs.start(name, argv, worker_env(top), cwd=ROOT)

    def online() -> bool:
        for w in workers(top.api, pool):
            if (
                w["name"] == name
                and w.get("status") == "ONLINE"
                and _after(w.get("last_heartbeat_time"), started)
            ):
                return True
        return False

    wait_until(online, timeout_s, f"worker {name} online in {pool}")
    return name


def _after(stamp: str | None, since: float) -> bool:
    from datetime import datetime

    return bool(stamp) and datetime.fromisoformat(str(stamp)).timestamp() >= since - 1


def up(top: Topology) -> dict[str, float]:
    """Start everything in dependency order; seconds each step took."""
    steps: dict[str, float] = {}

    def step(name: str, fn: Callable[[], object]) -> None:
        t0 = time.monotonic()
        fn()
        steps[name] = round(time.monotonic() - t0, 1)

    step("postgres", lambda: _postgres(top))
    step("prefect-server", lambda: start_prefect_server(top))
    step("gcs+search", lambda: start_lake_and_search(top))
    step("dask", lambda: start_dask(top))
    step("deploy", lambda: deploy(top))
    step("workers", lambda: [start_worker(top, pool) for pool in POOLS])
    return steps


def _postgres(top: Topology) -> None:
    init_postgres(top)
    start_postgres(top)
    create_database(top)


def down(top: Topology) -> None:
    """Stop every process of the topology (and anything they left below the rehearsal)."""
    try:
        if top.es is not None:
            top.es.down()
        if top.gcs is not None:
            top.gcs.down()
    finally:
        top.procs.stop_all()
        if top.pg is not None and top.state not in top.pg.parents:
            shutil.rmtree(top.pg, ignore_errors=True)
