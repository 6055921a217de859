"""Dataset versions: reproducible hashes, new versions only for new data, clear failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.cli import main
from infra.settings import Settings
from infra.storage import open_storage
from schemas.pairs import PAIR_SCHEMA
from tasks.datasets.build import DatasetOptions, build_dataset
from tasks.datasets.quality import QualityGateError
from tasks.ingest.uploads import ingest_export

SAMPLE = Path(__file__).parents[1] / "samples" / "kakao_android_ko.txt"


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    ingest_export(SAMPLE, "demo", open_storage(f"file://{root}"), Settings())
    return root


def test_build_writes_a_complete_version(lake: Path) -> None:
    result = build_dataset(open_storage(f"file://{lake}"), "demo", "엄마")
    assert result.created and result.version == 1
    folder = lake / "datasets" / "demo" / "엄마" / "v1"
    assert sorted(p.name for p in folder.iterdir()) == [
        ".reserved",
        "audit.parquet",
        "manifest.json",
        "quality.json",
        "quality.md",
        "train.parquet",
        "validation.parquet",
    ]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    train = pq.read_table(folder / "train.parquet")
    validation = pq.read_table(folder / "validation.parquet")
    assert train.schema.equals(PAIR_SCHEMA, check_metadata=False)
    assert manifest["counts"]["pairs_train"] == train.num_rows > 100
    assert manifest["counts"]["pairs_validation"] == validation.num_rows > 0
    assert not set(train.column("session_id").to_pylist()) & set(validation.column("session_id").to_pylist())
    assert manifest["counts"]["messages_in"] == 3000
    assert {s["step"] for s in manifest["steps"]} >= {"drop_attachments", "redact_pii", "drop_duplicates"}
    assert manifest["redactions"]["phone"] > 0
    assert manifest["parameters"]["turns"]["session_gap_s"] == 3600
    for name, meta in manifest["files"].items():
        assert meta["size"] == (folder / name).stat().st_size
    # Every message is either in the clean set or explained in the audit.
    audit = pq.read_table(folder / "audit.parquet").to_pandas()
    dropped = audit[audit["action"] == "dropped"]
    assert manifest["counts"]["messages_clean"] + len(dropped) == manifest["counts"]["messages_in"]


def test_rebuild_from_unchanged_input_keeps_the_version(lake: Path) -> None:
    storage = open_storage(f"file://{lake}")
    first = build_dataset(storage, "demo", "엄마")
    again = build_dataset(storage, "demo", "엄마")
    assert (again.created, again.version, again.content_hash) == (False, 1, first.content_hash)
    assert not (lake / "datasets" / "demo" / "엄마" / "v2").exists()


def test_same_input_in_another_lake_gives_the_same_hash(lake: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(lake / "messages", other / "messages")
    a = build_dataset(open_storage(f"file://{lake}"), "demo", "엄마")
    b = build_dataset(open_storage(f"file://{other}"), "demo", "엄마")
    assert a.content_hash == b.content_hash
    assert (lake / a.prefix / "train.parquet").read_bytes() == (
        other / b.prefix / "train.parquet"
    ).read_bytes()


def test_new_data_makes_a_new_version(lake: Path, tmp_path: Path) -> None:
    storage = open_storage(f"file://{lake}")
    first = build_dataset(storage, "demo", "엄마")
    extra = tmp_path / "more.txt"
    extra.write_text(
        "엄마 님과 카카오톡 대화\n저장한 날짜 : 2024년 12월 1일 오후 1:00\n\n"
        "2024년 11월 30일 오후 3:00, 나 : 엄마 뭐해?\n"
        "2024년 11월 30일 오후 3:01, 엄마 : 김장하지\n",
        encoding="utf-8",
    )
    ingest_export(extra, "demo", storage, Settings())
    second = build_dataset(storage, "demo", "엄마")
    assert second.created and second.version == 2 and second.content_hash != first.content_hash
    assert second.manifest["counts"]["messages_in"] == 3002


def test_aliases_join_display_names(lake: Path) -> None:
    result = build_dataset(open_storage(f"file://{lake}"), "demo", "나", aliases=["엄마"])
    assert result.persona_id == "나"
    assert result.manifest["persona_names"] == ["나", "엄마"]
    assert result.manifest["counts"]["persona_messages"] == result.manifest["counts"]["messages_clean"]


def test_unknown_persona_lists_the_speakers(lake: Path, capsys) -> None:
    code = main(["dataset", "build", "--owner", "demo", "--persona", "아빠", "--lake", f"file://{lake}"])
    assert code == 1
    assert capsys.readouterr().err == (
        "rememberme: error: persona '아빠': matches no speaker of owner demo; speakers found: 엄마 (1555), 나 (1445)\n"
    )


def test_owner_without_messages_is_one_line(tmp_path: Path, capsys) -> None:
    code = main(
        ["dataset", "build", "--owner", "nobody", "--persona", "x", "--lake", f"file://{tmp_path}/empty"]
    )
    assert code == 1
    assert capsys.readouterr().err == (
        "rememberme: error: owner nobody: has no messages in the lake (ingest an export first)\n"
    )


def test_failed_gate_stops_and_stores_the_report(lake: Path) -> None:
    storage = open_storage(f"file://{lake}")
    with pytest.raises(QualityGateError) as failed:
        build_dataset(storage, "demo", "엄마", options=DatasetOptions(min_pairs=1_000_000))
    pairs = failed.value.report.rows
    assert str(failed.value) == (  # the family's terms; the gate's internals stay in the report
        f"엄마 has {pairs} reply pairs in this data; a persona needs at least 1000000 "
        "(add more conversations with them, or use --min-pairs to override)"
    )
    assert failed.value.report.expectations[0].result["observed_value"] == pairs
    base = lake / "datasets" / "demo" / "엄마"
    assert not list(base.glob("v*"))
    (report,) = base.glob("rejected/*/quality.md")
    assert "FAILED" in report.read_text(encoding="utf-8")


def test_cli_json(lake: Path, capsys) -> None:
    assert (
        main(
            ["dataset", "build", "--owner", "demo", "--persona", "엄마", "--lake", f"file://{lake}", "--json"]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["version"] == 1 and summary["created"] is True
    assert summary["quality"] == {"messages": True, "pairs": True}
    assert summary["counts"]["pairs_train"] > 0


def test_storage_create_is_exclusive(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}")
    assert storage.create("a/manifest.json", b"first")
    assert not storage.create("a/manifest.json", b"second")
    assert storage.read_bytes("a/manifest.json") == b"first"
    assert not list(tmp_path.rglob(".tmp-*"))


def test_cli_options_shape_the_dataset(lake: Path, capsys) -> None:
    args = ["dataset", "build", "--owner", "demo", "--persona", "엄마", "--lake", f"file://{lake}", "--json"]
    assert main([*args, "--context-turns", "2", "--seed", "7"]) == 0
    manifest = json.loads((lake / "datasets/demo/엄마/v1/manifest.json").read_text(encoding="utf-8"))
    assert (
        manifest["parameters"]["turns"]["context_turns"] == 2 and manifest["parameters"]["turns"]["seed"] == 7
    )
    contexts = pq.read_table(lake / "datasets/demo/엄마/v1/train.parquet").column("context").to_pylist()
    assert max(len(c) for c in contexts) == 2
    capsys.readouterr()
    assert main([*args, "--validation", "2"]) == 2  # a usage error
    assert "must be at least 0 and below 1, got 2.0" in capsys.readouterr().err
