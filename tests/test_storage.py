"""One storage contract, run over file:// and gs:// (a real GCS emulator on 127.0.0.1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.settings import Settings
from infra.storage import StorageError, open_storage
from tasks.datasets.build import build_dataset
from tasks.ingest.uploads import ingest_export

pytestmark = pytest.mark.integration
SAMPLE = Path(__file__).parents[1] / "samples" / "kakao_android_ko.txt"


def test_write_read_list_exists(lake_url: str, tmp_path: Path) -> None:
    storage = open_storage(lake_url)
    with storage.open_write("a/b/one.bin") as handle:
        handle.write(b"one")
    source = tmp_path / "two.txt"
    source.write_bytes(b"two")
    storage.put_file("a/two.txt", source)
    assert storage.read_bytes("a/b/one.bin") == b"one"
    assert storage.exists("a/two.txt") and not storage.exists("a/nothing")
    assert storage.list("a/") == ["a/b/one.bin", "a/two.txt"]
    assert storage.list("") == ["a/b/one.bin", "a/two.txt"]
    assert storage.uri("a/two.txt").endswith("/lake/a/two.txt")
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("a/nothing")


def test_delete_removes_one_object(lake_url: str) -> None:
    storage = open_storage(lake_url)
    storage.create("a/b/one.txt", b"1")
    storage.create("a/two.txt", b"2")
    assert storage.delete("a/b/one.txt") is True
    assert storage.delete("a/b/one.txt") is False
    assert storage.list("a/") == ["a/two.txt"]


def test_replace_if_is_a_compare_and_swap(lake_url: str) -> None:
    storage = open_storage(lake_url)
    data, token = storage.read_versioned("state/aliases.json")
    assert data is None
    assert storage.replace_if("state/aliases.json", b"v1", token) is True
    assert storage.replace_if("state/aliases.json", b"lost", token) is False  # moved since the read
    data, token = storage.read_versioned("state/aliases.json")
    assert data == b"v1"
    assert storage.replace_if("state/aliases.json", b"v2", token) is True
    assert storage.read_bytes("state/aliases.json") == b"v2"
    assert storage.list("state/") == ["state/aliases.json"]  # no lock or temp files listed


def test_key_reverses_uri(lake_url: str) -> None:
    from infra.storage import StorageError

    storage = open_storage(lake_url)
    assert storage.key(storage.uri("voice/owner=o/a b.wav")) == "voice/owner=o/a b.wav"
    with pytest.raises(StorageError, match="is not in the lake"):
        storage.key("gs://elsewhere/x" if lake_url.startswith("file") else "file:///tmp/x")


def test_failed_write_publishes_nothing(lake_url: str) -> None:
    storage = open_storage(lake_url)
    with pytest.raises(RuntimeError), storage.open_write("x/half.parquet") as handle:
        handle.write(b"half")
        raise RuntimeError("crash mid-write")
    assert storage.list("x/") == []


def test_create_is_exclusive(lake_url: str) -> None:
    storage = open_storage(lake_url)
    assert storage.create("m/manifest.json", b"first")
    assert not storage.create("m/manifest.json", b"second")
    assert storage.read_bytes("m/manifest.json") == b"first"


def test_keys_cannot_escape_the_lake(lake_url: str) -> None:
    storage = open_storage(lake_url)
    for key in ("../etc/passwd", "a/../../b", ""):
        with pytest.raises(StorageError):
            storage.exists(key)


def test_ingest_and_dataset_build_end_to_end(lake_url: str) -> None:
    storage = open_storage(lake_url)
    summary = ingest_export(SAMPLE, "demo", storage, Settings())
    assert summary.messages == 3000
    assert storage.exists(f"raw/demo/{summary.upload_id}/_ingest.json")
    first = build_dataset(storage, "demo", "엄마")
    again = build_dataset(storage, "demo", "엄마")
    assert first.created and not again.created and again.version == 1
    manifest = json.loads(storage.read_bytes(f"{first.prefix}/manifest.json"))
    assert manifest["counts"]["pairs_train"] > 100


def test_deleting_a_swapped_object_leaves_no_folder_behind(tmp_path: Path) -> None:
    """A forgotten persona's folder (its name) must go with its last object, lock files included."""
    storage = open_storage(f"file://{tmp_path}/lake")
    key = "models/o1/아빠/text/aliases.json"
    _, token = storage.read_versioned(key)
    assert storage.replace_if(key, b"{}", token)
    assert storage.delete(key)
    assert not (tmp_path / "lake" / "models" / "o1").exists()


def test_a_write_killed_before_its_rename_is_debris_that_forget_deletes(tmp_path: Path) -> None:
    """SIGKILL inside open_write leaves the temp file: never listed, but the subject's bytes."""
    import signal
    import subprocess
    import sys

    from tasks.lifecycle.forget import delete_prefix

    lake = f"file://{tmp_path}/lake"
    script = (
        "import os, signal, sys\n"
        "from infra.storage import open_storage\n"
        "with open_storage(sys.argv[1]).open_write('messages/owner=o/part.parquet') as h:\n"
        "    h.write(b'010-2345-6789 words of the subject')\n"
        "    h.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, lake], cwd=Path(__file__).parents[1], check=False)
    assert proc.returncode == -signal.SIGKILL
    storage = open_storage(lake)
    assert storage.list("messages/owner=o/") == []  # no reader trusts it
    [temp] = storage.debris("messages/owner=o/")
    assert Path(temp).name.startswith(".tmp-")
    assert delete_prefix(storage, "messages/owner=o/") == 1
    assert storage.debris("") == [] and not (tmp_path / "lake" / "messages").exists()
