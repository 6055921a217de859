"""The one versioned-write primitive: numbers reserved first, manifest last, reads verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.storage import open_storage
from infra.versions import VersionedStore, VersionError, read_verified


def test_a_version_exists_once_its_manifest_does(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    store = VersionedStore(storage, "datasets/o1/mom")
    assert store.reserve() == 1  # a crashed writer: reservation and a file, no manifest
    with storage.open_write("datasets/o1/mom/v1/train.parquet") as handle:
        handle.write(b"half")
    assert store.versions() == [] and store.latest() is None
    manifest = store.write({"train.parquet": b"rows"}, {"content_hash": "h"})
    assert manifest["version"] == 2  # the crashed number is never reused
    assert store.versions() == [2]
    assert read_verified(storage, "datasets/o1/mom/v2/train.parquet") == b"rows"
    with pytest.raises(VersionError, match="datasets/o1/mom has no version 1"):
        read_verified(storage, "datasets/o1/mom/v1/train.parquet")


def test_an_overwritten_file_is_refused(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    store = VersionedStore(storage, "voice/owner=o1/datasets/mom")
    store.write({"segments.parquet": b"mine"}, {})
    with storage.open_write("voice/owner=o1/datasets/mom/v1/segments.parquet") as handle:
        handle.write(b"someone else's")
    with pytest.raises(VersionError, match=r"segments.parquet: sha256 does not match the manifest"):
        read_verified(storage, "voice/owner=o1/datasets/mom/v1/segments.parquet")
    with pytest.raises(VersionError, match="not listed in its version's manifest"):
        store.read(1, "extra.parquet")
    with pytest.raises(VersionError, match="cannot be a file of a version"):
        store.write({"manifest.json": b"{}"}, {})
    assert json.loads(storage.read_bytes("voice/owner=o1/datasets/mom/v1/manifest.json"))["version"] == 1
