"""Forget's derived step finds what depends on a retired base, even after a crash half-way."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.registry import Registry
from infra.settings import Settings
from infra.storage import open_storage
from infra.versions import VersionedStore
from models.train import TrainConfig
from tasks.datasets.build import DatasetOptions, build_dataset
from tasks.ingest.uploads import ingest_export
from tasks.lifecycle.forgetting import forget
from tasks.training.base_model import base_corpus, train_base
from tasks.training.train import BASE_OWNER, BASE_PERSONA, ModelOptions, train_persona
from tasks.trust.consent import set_base_opt_in
from tests.fault_support import KillAt
from tests.messages import small_family_export


@pytest.mark.slow
def test_a_rerun_retrains_personas_left_on_a_base_a_crashed_forget_retired(tmp_path: Path) -> None:
    export = small_family_export(tmp_path / "family.txt")
    storage = open_storage(f"file://{tmp_path}/lake")
    ingest_export(export, "fam", storage, Settings())
    set_base_opt_in(storage, "fam", True)
    options = ModelOptions(train=TrainConfig(max_steps=3))
    corpus, lineage = base_corpus(storage)
    base = train_base(storage, corpus, options, lineage=lineage)
    dataset = build_dataset(storage, "fam", "엄마", options=DatasetOptions(min_pairs=5))
    model = train_persona(storage, "fam", dataset.persona_id, dataset.version, options)
    assert model["base_version"] == base["version"]

    # A forget that retired the base and then died before retraining its dependents.
    registry = Registry(storage)
    registry.retire(BASE_OWNER, BASE_PERSONA, "base", base["version"])
    receipt = forget(storage, None, "somebody-else", options=options)  # any later forget run
    assert f"fam/엄마 text v{model['version']}" in receipt["derived"]["retired"]
    assert f"fam/엄마 text v{model['version'] + 1}" in receipt["derived"]["rebuilt"]
    assert registry.versions("fam", "엄마", "text") == [model["version"] + 1]
    assert registry.aliases("fam", "엄마", "text")["production"] == model["version"] + 1
    assert receipt["left"]["models_on_retired_bases"] == 0
    # The retired number is never handed out again.
    again = train_base(storage, corpus, options, lineage=lineage)
    assert again["version"] == base["version"] + 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "point",
    [  # make test runs the middle one; the SIGKILL matrix (make faults) covers all three again
        pytest.param("forget.rows", marks=pytest.mark.faults),
        "forget.rebuilt",
        pytest.param("forget.retrained", marks=pytest.mark.faults),
    ],
)
def test_a_forget_killed_half_way_is_finished_by_its_rerun(
    tmp_path: Path, point: str, kill_at: KillAt
) -> None:
    """The journal: uploads, other personas' rebuild, retrain and re-index survive a kill.

    Without it a re-run kept the upload (its rows were gone, so nothing tied it to the subject)
    and the other persona's model trained with the subject's words (its dataset was rebuilt, so
    it looked untouched).
    """
    talk = (
        ("아빠", "밥은 먹었니"),
        ("민수", "네 먹었어요"),
        ("엄마", "엄마는 시장 다녀왔지"),
        ("민수", "뭐 샀어요"),
    )
    export = small_family_export(tmp_path / "family.txt", lines=talk)
    storage = open_storage(f"file://{tmp_path}/lake")
    ingest_export(export, "fam", storage, Settings())
    options = ModelOptions(train=TrainConfig(max_steps=2))
    son = build_dataset(storage, "fam", "민수", options=DatasetOptions(min_pairs=5))
    old_model = train_persona(storage, "fam", son.persona_id, son.version, options)
    mom = build_dataset(storage, "fam", "엄마", options=DatasetOptions(min_pairs=5))
    train_persona(storage, "fam", mom.persona_id, mom.version, options)

    with kill_at(point):
        forget(storage, None, "fam", "엄마", options=options)

    receipt = forget(storage, None, "fam", "엄마", options=options)
    assert receipt["resumed"] is True
    assert all(v == 0 for v in receipt["left"].values()), receipt["left"]
    assert storage.list("raw/fam/") == [] and storage.list("quarantine/fam/") == []
    registry = Registry(storage)
    versions = registry.versions("fam", "민수", "text")
    assert old_model["version"] not in versions  # trained on the subject's words: retired
    newest = registry.manifest("fam", "민수", "text", versions[-1])
    datasets = VersionedStore(storage, "datasets/fam/민수")
    assert datasets.versions() == [newest["dataset"]["version"]]  # only the clean dataset is left
    assert registry.aliases("fam", "민수", "text")["production"] == versions[-1]
    again = forget(storage, None, "fam", "엄마", options=options)  # finished: nothing resumed
    assert again["resumed"] is False and again["derived"]["rebuilt"] == []


def test_forget_finds_the_subjects_uploads_in_a_lake_moved_since_they_were_ingested(
    tmp_path: Path, family_export: Path
) -> None:
    """An upload is tied to its speakers by its own ingest record, not by the URI of a message part
    (a lake restored from a backup, or mounted elsewhere, kept every upload of a forgotten person)."""
    import shutil

    before = open_storage(f"file://{tmp_path}/old/lake")
    ingest_export(family_export, "fam", before, Settings())
    shutil.copytree(tmp_path / "old", tmp_path / "new")
    shutil.rmtree(tmp_path / "old")
    storage = open_storage(f"file://{tmp_path}/new/lake")
    receipt = forget(storage, None, "fam", "엄마")
    assert storage.list("raw/fam/") == [] and storage.list("quarantine/fam/") == []
    assert all(v == 0 for v in receipt["left"].values()), receipt["left"]
