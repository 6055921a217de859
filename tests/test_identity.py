"""Identities that cannot collide: look-alike persona names get their own ids and paths."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from infra.settings import Settings
from infra.storage import open_storage
from parsers.kakao.render import Line, RenderOptions, render_export
from tasks.clean import slug
from tasks.dataset import DatasetOptions, build_dataset
from tasks.forget import forget
from tasks.ingest import ingest_export


def test_names_that_clean_to_the_same_text_get_different_ids() -> None:
    names = ["엄마", "엄마❤️", "엄마 ❤️", "엄마💕", "❤️", "💕", "엄마~", "김 순자", "김_순자"]
    ids = [slug(n) for n in names]
    assert len(set(ids)) == len(ids), ids
    assert slug("엄마") == "엄마" and slug("mom.kim") == "mom.kim"  # path-safe names keep their id
    assert slug("엄마❤️") == slug("엄마❤️")  # stable
    assert all("/" not in i and i.strip() == i for i in ids)


def test_forgetting_one_of_two_look_alike_personas_leaves_the_other(tmp_path: Path) -> None:
    lines = []
    ts = datetime(2024, 3, 1, 9, 0)
    for i in range(60):
        ts += timedelta(minutes=2 if i % 5 else 240)
        lines.append(Line(ts, "나", f"오늘 뭐 했어 {i}"))
        lines.append(Line(ts + timedelta(minutes=1), "엄마", f"엄마는 시장 다녀왔지 {i}"))
        lines.append(Line(ts + timedelta(minutes=1), "엄마❤️", f"새엄마는 산책했어 {i}"))
    export = tmp_path / "family.txt"
    export.write_text(render_export("android_ko", lines, RenderOptions(room="가족")), encoding="utf-8")
    storage = open_storage(f"file://{tmp_path}/lake")
    ingest_export(export, "fam", storage, Settings())
    options = DatasetOptions(min_pairs=5)
    mom = build_dataset(storage, "fam", "엄마", options=options)
    heart = build_dataset(storage, "fam", "엄마❤️", options=options)
    assert mom.prefix != heart.prefix

    forget(storage, None, "fam", "엄마❤️")
    assert storage.list(f"{mom.prefix}/") and not storage.list(f"{heart.prefix}/")
