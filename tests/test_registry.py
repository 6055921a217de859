"""The checkpoint registry over file:// and gs:// (emulator): immutability, aliases, tampering, races."""

from __future__ import annotations

import json
import threading

import pytest

from infra.registry import Registry, RegistryError
from infra.storage import open_storage


def _publish(registry: Registry, n: int = 1, val_loss: float = 2.0) -> list[int]:
    out = []
    for i in range(n):
        manifest = registry.publish(
            "o1", "엄마", "text", {"model.onnx": f"weights {i}".encode()}, {"metrics": {"val_loss": val_loss}}
        )
        out.append(manifest["version"])
    return out


def test_publish_numbers_versions_and_moves_latest(lake_url: str) -> None:
    registry = Registry(open_storage(lake_url))
    assert _publish(registry, 3) == [1, 2, 3]
    assert registry.versions("o1", "엄마", "text") == [1, 2, 3]
    assert registry.aliases("o1", "엄마", "text") == {"latest": 3}
    manifest = registry.manifest("o1", "엄마", "text", 2)
    assert manifest["files"]["model.onnx"]["size"] == len(b"weights 1")
    assert manifest["code_version"] and manifest["created_at"]
    loaded = registry.load("o1", "엄마", "text")  # no production yet: latest
    assert loaded.version == 3 and loaded.files["model.onnx"] == b"weights 2"


def test_published_versions_are_never_rewritten(lake_url: str) -> None:
    storage = open_storage(lake_url)
    registry = Registry(storage)
    _publish(registry)
    storage.create("models/o1/엄마/text/v2/.reserved", b"another publisher")  # holds v2, not done yet
    manifest = registry.publish("o1", "엄마", "text", {"model.onnx": b"new weights"}, {})
    assert manifest["version"] == 3  # a taken number is skipped, never written into
    assert registry.versions("o1", "엄마", "text") == [1, 3]
    assert registry.load("o1", "엄마", "text", 1).files["model.onnx"] == b"weights 0"
    assert registry.load("o1", "엄마", "text", 3).files["model.onnx"] == b"new weights"


def test_promote_and_rollback_move_only_the_pointer(lake_url: str) -> None:
    registry = Registry(open_storage(lake_url))
    _publish(registry, 3)
    registry.set_alias("o1", "엄마", "text", "production", 1)
    registry.set_alias("o1", "엄마", "text", "production", 3)
    assert registry.load("o1", "엄마", "text").version == 3
    assert registry.rollback("o1", "엄마", "text") == 1
    assert registry.aliases("o1", "엄마", "text") == {"latest": 3, "production": 1}
    assert registry.versions("o1", "엄마", "text") == [1, 2, 3]  # nothing deleted
    with pytest.raises(RegistryError, match="has no version 9"):
        registry.set_alias("o1", "엄마", "text", "production", 9)


def test_a_tampered_file_is_refused(lake_url: str) -> None:
    storage = open_storage(lake_url)
    registry = Registry(storage)
    _publish(registry)
    with storage.open_write("models/o1/엄마/text/v1/model.onnx") as handle:
        handle.write(b"evil weights")
    with pytest.raises(
        RegistryError,
        match=r"model.onnx: sha256 does not match the manifest \(overwritten, torn or tampered\)",
    ):
        registry.load("o1", "엄마", "text", 1)


def test_unknown_persona_is_a_clear_error(lake_url: str) -> None:
    registry = Registry(open_storage(lake_url))
    with pytest.raises(RegistryError, match=r"no published text model for o1/아빠"):
        registry.load("o1", "아빠", "text")


def test_concurrent_publishers_get_distinct_numbers(lake_url: str) -> None:
    registry = Registry(open_storage(lake_url))
    versions: list[int] = []
    barrier = threading.Barrier(4)

    def publish(i: int) -> None:
        barrier.wait()
        manifest = registry.publish("o1", "엄마", "text", {"model.onnx": f"w{i}".encode()}, {})
        versions.append(manifest["version"])

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(versions) == [1, 2, 3, 4]
    for v in versions:  # each version holds the files of the publisher that got it
        assert registry.load("o1", "엄마", "text", v).files["model.onnx"].startswith(b"w")
    assert registry.aliases("o1", "엄마", "text")["latest"] == 4


def test_rollback_twice_goes_back_two_production_versions(lake_url: str) -> None:
    registry = Registry(open_storage(lake_url))
    _publish(registry, 3)
    for version in (1, 2, 3):
        registry.set_alias("o1", "엄마", "text", "production", version)
    assert registry.rollback("o1", "엄마", "text") == 2
    assert registry.rollback("o1", "엄마", "text") == 1  # not back to 3: no bounce
    assert registry.aliases("o1", "엄마", "text")["production"] == 1
    with pytest.raises(RegistryError, match="production has no earlier version to roll back to"):
        registry.rollback("o1", "엄마", "text")


def test_rollback_survives_many_candidate_publishes(lake_url: str) -> None:
    registry = Registry(open_storage(lake_url))
    _publish(registry, 2)
    registry.set_alias("o1", "엄마", "text", "production", 1)
    registry.set_alias("o1", "엄마", "text", "production", 2)
    _publish(registry, 60)  # each moves `latest`: production's past must not be pushed out
    assert registry.aliases("o1", "엄마", "text")["latest"] == 62
    assert registry.rollback("o1", "엄마", "text") == 1


def test_promote_after_rollback_is_explicit_and_can_be_rolled_back(lake_url: str) -> None:
    registry = Registry(open_storage(lake_url))
    _publish(registry, 3)
    for version in (1, 2):
        registry.set_alias("o1", "엄마", "text", "production", version)
    assert registry.rollback("o1", "엄마", "text") == 1
    registry.set_alias("o1", "엄마", "text", "production", 3)  # `models promote --version 3`
    assert registry.rollback("o1", "엄마", "text") == 1  # back to where the promote left from
    assert registry.aliases("o1", "엄마", "text") == {"latest": 3, "production": 1}


def test_a_retired_version_leaves_every_rollback_stack(lake_url: str) -> None:
    registry = Registry(open_storage(lake_url))
    _publish(registry, 3)
    for version in (1, 2, 3):
        registry.set_alias("o1", "엄마", "text", "production", version)
    registry.retire("o1", "엄마", "text", 2)
    assert registry.rollback("o1", "엄마", "text") == 1  # 2 is gone: never pointed at again


def test_rollback_reads_stacks_from_an_older_alias_file(lake_url: str) -> None:
    storage = open_storage(lake_url)
    registry = Registry(storage)
    _publish(registry, 3)
    moves = [("latest", 3), ("production", 1), ("production", 3)]
    legacy = {
        "latest": 3,
        "production": 3,
        "_history": [{"alias": a, "version": v, "at": ""} for a, v in moves],
    }
    _, token = storage.read_versioned("models/o1/엄마/text/aliases.json")
    assert storage.replace_if("models/o1/엄마/text/aliases.json", json.dumps(legacy).encode(), token)
    assert registry.rollback("o1", "엄마", "text") == 1


def test_retiring_production_never_promotes_a_candidate_the_gate_refused(lake_url: str) -> None:
    registry = Registry(open_storage(lake_url))
    files = {"model.onnx": b"w"}
    for promote in (True, True, False):  # v3: a candidate the gate refused
        registry.publish("o1", "엄마", "text", files, {"promotion": {"promote": promote}})
    registry.set_alias("o1", "엄마", "text", "production", 2)
    registry.retire("o1", "엄마", "text", 2)  # forget took production's data away
    assert registry.aliases("o1", "엄마", "text") == {"latest": 3, "production": 1}
    registry.retire("o1", "엄마", "text", 1)
    assert registry.aliases("o1", "엄마", "text") == {"latest": 3}  # none passed the gate: none serves
