"""Identities that cannot collide: look-alike persona names get their own ids and paths."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from infra.settings import Settings
from infra.storage import Storage, open_storage
from parsers.kakao.render import Line, RenderOptions, render_export
from schemas.names import slug
from tasks.datasets.build import DatasetOptions, build_dataset
from tasks.ingest.uploads import ingest_export
from tasks.lifecycle.forgetting import forget


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

    receipt = forget(storage, None, "fam", "엄마❤️")
    assert not storage.list(f"{heart.prefix}/")
    # 엄마 stays, rebuilt without the forgotten one's words (they were context of her pairs).
    assert receipt["derived"]["rebuilt"] == ["dataset fam/엄마 v2"] and not storage.list(f"{mom.prefix}/")
    again = build_dataset(storage, "fam", "엄마", options=options)
    assert again.version == 2 and not again.created
    pairs = pq.read_table(io.BytesIO(storage.read_bytes(f"{again.prefix}/train.parquet"))).to_pylist()
    contexts = [turn["text"] for pair in pairs for turn in pair["context"]]
    assert pairs and not any("새엄마" in text for text in contexts)
    assert all(v == 0 for v in receipt["left"].values()), receipt["left"]


def _chat(path: Path, room: str, opener: str, days: int, start: datetime) -> Path:
    lines, ts = [], start
    for i in range(days * 4):
        ts += timedelta(hours=6)
        lines.append(Line(ts, "나", f"{opener} {i}"))
        lines.append(Line(ts + timedelta(minutes=1), "엄마", f"그래 {opener} {i}"))
    path.write_text(render_export("android_ko", lines, RenderOptions(room=room)), encoding="utf-8")
    return path


def _ids(storage: Storage, owner: str) -> tuple[set[str], set[str]]:
    from tasks.ingest.lake import load_message_table

    table = load_message_table(storage, owner)
    return set(table["message_id"].to_pylist()), set(table["conversation_id"].to_pylist())


def test_one_file_uploaded_by_two_owners_gives_two_sets_of_ids(tmp_path: Path, es_url: str) -> None:
    from infra.search import connect
    from schemas.search import MESSAGES_ALIAS
    from tasks.indexing.indexer import index_table
    from tasks.ingest.lake import load_message_table

    export = _chat(tmp_path / "shared.txt", "가족", "밥 먹었니", 5, datetime(2024, 1, 1))
    storage = open_storage(f"file://{tmp_path}/lake")
    for owner in ("sister", "brother"):
        ingest_export(export, owner, storage, Settings())
    sister, brother = _ids(storage, "sister"), _ids(storage, "brother")
    assert sister[0] and not sister[0] & brother[0]  # message ids are the owner's own
    assert not sister[1] & brother[1]
    again = ingest_export(export, "sister", storage, Settings())  # the same owner again: same ids
    assert again.messages == len(sister[0]) and _ids(storage, "sister") == sister

    client = connect(es_url)
    for owner in ("sister", "brother"):
        index_table(storage, client, owner, load_message_table(storage, owner))
    client.indices.refresh(index=MESSAGES_ALIAS)
    for owner in ("sister", "brother"):  # neither upload overwrote the other's documents
        query = {"term": {"owner_id": owner}}
        assert client.count(index=MESSAGES_ALIAS, query=query, routing=owner)["count"] == len(sister[0])


def test_rooms_with_one_title_stay_apart_and_a_reexport_keeps_its_room(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    first = _chat(tmp_path / "a.txt", "가족", "학교 다녀왔어", 3, datetime(2024, 1, 1))
    other = _chat(tmp_path / "b.txt", "가족", "회사 끝났어", 3, datetime(2024, 2, 1))
    later = _chat(tmp_path / "c.txt", "가족", "학교 다녀왔어", 6, datetime(2024, 1, 1))  # a's room, later
    ids = []
    for path in (first, other, later):
        before = _ids(storage, "fam")[1] if storage.list("messages/") else set()
        ingest_export(path, "fam", storage, Settings())
        ids.append(_ids(storage, "fam")[1] - before)
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1]  # two rooms, one title
    assert ids[2] == set()  # the later export of the first room joined it
    assert len(_ids(storage, "fam")[1]) == 2
