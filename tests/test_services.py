"""The local Elasticsearch-API stand-in: started on demand, answered by the real client, stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from flows.cli import main
from infra.services import free_port

pytestmark = pytest.mark.integration


def test_services_up_status_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    port = free_port()
    monkeypatch.setenv("REMEMBERME_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("REMEMBERME_LOCAL_ES_PORT", str(port))
    try:
        assert main(["services", "up", "--json"]) == 0
        status, gcs = json.loads(capsys.readouterr().out)
        assert gcs["name"] == "gcs-emulator" and gcs["running"] is False  # only with --gcs
        assert status == {
            "name": "elasticsearch",
            "url": f"http://127.0.0.1:{port}",
            "running": True,
            "managed": True,
            "data_dir": str(tmp_path / "state" / "elasticsearch"),
        }
        client = Elasticsearch(f"http://127.0.0.1:{port}")
        client.index(index="probe", id="1", document={"text": "안녕"}, refresh=True)
        assert client.get(index="probe", id="1")["_source"] == {"text": "안녕"}
        assert main(["services", "up"]) == 0  # idempotent
        capsys.readouterr()
    finally:
        assert main(["services", "down"]) == 0
    assert f"elasticsearch  down http://127.0.0.1:{port}" in capsys.readouterr().out


def test_external_url_is_reported_not_managed(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("REMEMBERME_ES_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["services", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)[0]
    assert status["managed"] is False and status["running"] is False


def test_gcs_emulator_up_serves_the_lake_and_down_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from infra.storage import open_storage

    port = free_port()
    monkeypatch.setenv("REMEMBERME_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("REMEMBERME_ES_URL", f"http://127.0.0.1:{free_port()}")  # no ES needed here
    monkeypatch.setenv("REMEMBERME_LOCAL_GCS_PORT", str(port))
    try:
        assert main(["services", "up", "--gcs", "--json"]) == 0
        _, gcs = json.loads(capsys.readouterr().out)
        assert gcs["running"] is True and gcs["url"] == f"http://127.0.0.1:{port}"
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs["url"])
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(credentials=AnonymousCredentials(), project="p")  # type: ignore[no-untyped-call]
        client.create_bucket("svc-lake")
        lake = open_storage("gs://svc-lake/x")
        assert lake.create("a.txt", b"1") is True and lake.create("a.txt", b"2") is False
        assert lake.read_bytes("a.txt") == b"1"
    finally:
        assert main(["services", "down"]) == 0
    assert f"gcs-emulator   down http://127.0.0.1:{port}" in capsys.readouterr().out


def test_a_foreign_server_on_our_port_is_refused(tmp_path: Path) -> None:
    from infra.services import LocalElasticsearch, ServiceError

    port = free_port()
    theirs = LocalElasticsearch(tmp_path / "theirs", port)
    theirs.up()
    try:
        ours = LocalElasticsearch(tmp_path / "ours", port)
        with pytest.raises(ServiceError, match="is served by another Elasticsearch API"):
            ours.up()  # never started here: not ours
        (tmp_path / "ours").mkdir()
        with pytest.raises(ServiceError, match="is served by another Elasticsearch API"):
            ours.up()  # a data dir whose server is not running: not ours either
        assert theirs.up() == f"http://127.0.0.1:{port}"  # its own owner still finds it
    finally:
        theirs.down()


def test_a_foreign_server_on_the_chosen_port_moves_ours_to_a_free_one(tmp_path: Path) -> None:
    """`make demo` with another folder's server on 9200: ours takes another port, theirs is untouched."""
    from infra.services import LocalElasticsearch, local_elasticsearch
    from infra.settings import Settings

    port = free_port()
    theirs = LocalElasticsearch(tmp_path / "theirs", port)
    theirs.up()
    state = tmp_path / "state"
    state.mkdir()
    (state / "elasticsearch.port").write_text(f"{port}\n")  # as if 9200 had been chosen before
    ours = local_elasticsearch(Settings(state_dir=str(state)))
    try:
        url = ours.up()
        assert url != f"http://127.0.0.1:{port}"
        assert (state / "elasticsearch.port").read_text().strip() == url.rsplit(":", 1)[1]
        again = local_elasticsearch(Settings(state_dir=str(state)))  # a later run finds ours
        assert again.up() == url
        Elasticsearch(url).index(index="probe", id="1", document={"x": 1}, refresh=True)
        assert not Elasticsearch(f"http://127.0.0.1:{port}").indices.exists(index="probe")
    finally:
        ours.down()
        theirs.down()


@pytest.mark.integration
def test_a_prefect_server_whose_port_was_taken_meanwhile_moves_to_a_free_one(tmp_path: Path) -> None:
    """Another worker's server (here: a stranger that answers in no HTTP) took the chosen port."""
    import socket
    import threading

    from infra.services import LocalPrefectServer

    stranger = socket.socket()
    stranger.bind(("127.0.0.1", 0))
    stranger.listen()
    port = stranger.getsockname()[1]

    def babble() -> None:
        while True:
            try:
                conn, _ = stranger.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"\x00\x01compression pickle-protocol\n")

    threading.Thread(target=babble, daemon=True).start()
    server = LocalPrefectServer(tmp_path / "prefect", port)
    try:
        api = server.start()
        assert server.port != port and api == f"http://127.0.0.1:{server.port}/api"
    finally:
        server.stop()
        stranger.close()
