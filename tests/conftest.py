from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import infra.faults
from tests import fault_support
from tests.fault_support import KillAt, KilledError

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One compute thread per worker (and per process it starts): `make test` runs a worker per
    # core, and two workers each spinning a thread per core run slower than one worker alone.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's .env or REMEMBERME_* variables, or writes to ./data."""
    for key in list(os.environ):
        if key.startswith("REMEMBERME_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def golden() -> Path:
    return GOLDEN


@pytest.fixture(scope="session")
def family_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Android export of 엄마 and 나, 800 messages: the bundled sample's talk at a quarter of its size.

    Tests that train and evaluate a persona embed every pair; the bundled 3,000 messages cost a
    minute of CPU in each process and test nothing more. The sample itself still goes through
    ingest, datasets and the restore flow untrained (test_dataset, test_races), and `make demo`
    restores it whole.
    """
    from parsers.kakao.render import RenderOptions, render_export
    from parsers.kakao.synth import conversation

    path = tmp_path_factory.mktemp("family") / "kakao_android_ko.txt"
    text = render_export("android_ko", conversation(800, seed=11), RenderOptions(room="엄마"))
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory):
    """A real fake-gcs-server process on 127.0.0.1 for the whole session (the `services` class)."""
    import os

    from infra.services import LocalGcsEmulator, free_port

    port = free_port()
    server = LocalGcsEmulator(tmp_path_factory.mktemp("gcs"), port)
    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = server.up()
    try:
        yield server
    finally:
        server.down()
        if saved is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = saved


@pytest.fixture
def gcs_bucket(gcs_emulator, request: pytest.FixtureRequest) -> str:
    """A fresh, empty bucket for one test."""
    import re
    import uuid

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(credentials=AnonymousCredentials(), project="rememberme-local")  # type: ignore[no-untyped-call]
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-" + uuid.uuid4().hex[:8]
    client.create_bucket(name)
    return name


@pytest.fixture(params=["file", "gs"])
def lake_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test body over a local lake and a GCS (emulator) lake."""
    if request.param == "file":
        return f"file://{tmp_path}/lake"
    bucket = request.getfixturevalue("gcs_bucket")
    return f"gs://{bucket}/lake"


@pytest.fixture(scope="session")
def es_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's local search server keeps its files (the trust-boundary scans read it)."""
    return tmp_path_factory.mktemp("es")


@pytest.fixture(scope="session")
def es_url(es_data_dir: Path):
    """The local Elasticsearch-API server (noida-db) on a free port, for the whole session."""

    from infra.services import LocalElasticsearch, free_port

    port = free_port()
    server = LocalElasticsearch(es_data_dir, port)
    url = server.up()
    try:
        yield url
    finally:
        server.down()


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory):
    """A real temporary Prefect API (SQLite) for the whole session: `prefect_test_harness`."""
    import os

    home = tmp_path_factory.mktemp("prefect-home")
    saved = {k: os.environ.get(k) for k in ("PREFECT_HOME", "PREFECT_LOCAL_STORAGE_PATH")}
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(home / "storage")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    try:
        with prefect_test_harness(server_startup_timeout=120):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def kill_at(monkeypatch: pytest.MonkeyPatch) -> KillAt:
    """Arm one kill point (raising) for the block: `with kill_at("point"): ...`."""
    monkeypatch.setattr(infra.faults, "_die", fault_support.killed)

    @contextlib.contextmanager
    def armed(point: str) -> Iterator[None]:
        monkeypatch.setenv("REMEMBERME_FAULT", point)
        monkeypatch.setattr(infra.faults, "_passed", type(infra.faults._passed)())
        try:
            with pytest.raises(KilledError):
                yield
        finally:
            monkeypatch.delenv("REMEMBERME_FAULT")

    return armed
