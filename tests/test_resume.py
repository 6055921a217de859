"""A re-run after a kill converges in-process: the kill points raise here instead of SIGKILL.

The SIGKILL matrix over real CLI runs is tests/test_faults.py (`make faults`); these are the
cheap cases `make test` runs every time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.leases import lease
from infra.registry import Registry
from infra.settings import Settings
from infra.storage import open_storage
from infra.versions import VersionedStore
from models.train import TrainConfig
from tasks.datasets.build import DatasetOptions, build_dataset
from tasks.ingest.uploads import ingest_export
from tasks.training.train import ModelOptions, train_persona
from tests.fault_support import KillAt
from tests.messages import small_family_export


def test_a_number_reserved_by_a_killed_holder_is_published_by_the_next_holder_of_its_lock(
    tmp_path: Path, kill_at: KillAt
) -> None:
    lake = open_storage(f"file://{tmp_path}/lake")
    store = VersionedStore(lake, "datasets/o/p")
    with kill_at("versions.files_written"), lease(lake, "persona-o-p", ttl_s=5):
        store.write({"pairs": b"old"}, {})
    assert store.versions() == [] and lake.exists("datasets/o/p/v1/.reserved")
    with lease(lake, "persona-o-p", ttl_s=5):
        published = store.write({"pairs": b"new"}, {})
    assert published["version"] == 1 and store.read(1, "pairs") == b"new"  # as if never killed

    # Without the lock nothing is taken over (a live writer may own the number), and a retired
    # number is never handed out again.
    with kill_at("versions.files_written"), lease(lake, "persona-o-p", ttl_s=5):
        store.write({"pairs": b"x"}, {})
    assert store.write({"pairs": b"y"}, {})["version"] == 3
    registry = Registry(lake)
    model = registry.publish("o", "p", "text", {"w": b"1"}, {})
    registry.retire("o", "p", "text", model["version"])
    with lease(lake, "persona-o-p", ttl_s=5):
        assert registry.publish("o", "p", "text", {"w": b"2"}, {})["version"] == model["version"] + 1


@pytest.mark.slow
def test_a_training_killed_between_publish_and_the_production_move_is_finished_not_retrained(
    tmp_path: Path, kill_at: KillAt
) -> None:
    export = small_family_export(tmp_path / "family.txt")
    storage = open_storage(f"file://{tmp_path}/lake")
    ingest_export(export, "fam", storage, Settings())
    dataset = build_dataset(storage, "fam", "엄마", options=DatasetOptions(min_pairs=5))
    options = ModelOptions(train=TrainConfig(max_steps=2))
    with kill_at("registry.published"):
        train_persona(storage, "fam", dataset.persona_id, dataset.version, options)
    registry = Registry(storage)
    assert registry.aliases("fam", "엄마", "text") == {"latest": 1}  # published, production not moved
    again = train_persona(storage, "fam", dataset.persona_id, dataset.version, options)
    assert again["version"] == 1 and registry.versions("fam", "엄마", "text") == [1]
    assert registry.aliases("fam", "엄마", "text")["production"] == 1
    other = train_persona(
        storage, "fam", dataset.persona_id, dataset.version, ModelOptions(train=TrainConfig(max_steps=3))
    )
    assert other["version"] == 2  # another request trains anew
