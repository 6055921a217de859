"""Persona training through publication, promotion gate, and chat on the published ONNX model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from infra.registry import Registry, RegistryError
from infra.search import connect
from infra.settings import Settings
from infra.storage import open_storage
from infra.text_features import default_embedder
from models.train import TrainConfig
from tasks.datasets.build import build_dataset
from tasks.indexing.indexer import index_persona_pairs
from tasks.ingest.uploads import ingest_export
from tasks.replies.chat import NOTICE, PRESENT_DAY_LINE, PersonaChat
from tasks.runs.markdown import model_card
from tasks.training.train import ModelOptions, train_persona

pytestmark = pytest.mark.integration
QUICK = ModelOptions(train=TrainConfig(max_steps=60, eval_every=20), style_samples=4)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, family_export: Path) -> tuple[str, dict[str, Any]]:
    lake = f"file://{tmp_path_factory.mktemp('chat')}/lake"
    storage = open_storage(lake)
    ingest_export(family_export, "chat-owner", storage, Settings())
    dataset = build_dataset(storage, "chat-owner", "엄마")
    manifest = train_persona(storage, "chat-owner", dataset.persona_id, dataset.version, QUICK)
    return lake, manifest


def test_published_manifest_holds_the_contract(published) -> None:
    lake, manifest = published
    assert manifest["version"] == 1 and manifest["kind"] == "text"
    assert manifest["dataset"]["version"] == 1 and len(manifest["dataset"]["content_hash"]) == 64
    assert set(manifest["files"]) == {
        "model.onnx",
        "weights.pt",
        "tokenizer.json",
        "config.json",
        "curve.json",
    }
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    metrics = manifest["metrics"]
    assert metrics["val_loss"] < manifest["curve"][0]["train_loss"]
    assert 0.0 <= metrics["discrimination_accuracy"] <= 1.0 and metrics["style_gap"]
    assert manifest["promotion"] == {"promote": True, "reason": "first production version"}
    assert Registry(open_storage(lake)).aliases("chat-owner", "엄마", "text") == {
        "latest": 1,
        "production": 1,
    }


def test_a_worse_model_is_published_as_a_candidate_only(published) -> None:
    lake, _ = published
    storage = open_storage(lake)
    worse = ModelOptions(train=TrainConfig(max_steps=2, eval_every=1, lr=1e-5), style_samples=2)
    manifest = train_persona(storage, "chat-owner", "엄마", 1, worse)
    assert manifest["version"] == 2 and manifest["promotion"]["promote"] is False
    assert "worse than production v1" in manifest["promotion"]["reason"]
    assert Registry(storage).aliases("chat-owner", "엄마", "text") == {"latest": 2, "production": 1}
    # The loss it lost on is recorded with the conversation verdict, both scorecards side by side.
    promotion = manifest["promotion"]
    assert promotion["lost_on"][0].startswith("validation nats/char")
    assert set(promotion["production_scorecard"]["selection"]) == {"similarity", "likelihood", "hybrid"}
    safety = manifest["conversation_eval"]["safety"]
    assert set(safety) == {"pseudonyms", "other_speaker", "claims_alive", "empty", "fragments", "fallback"}
    assert safety["pseudonyms"] == safety["claims_alive"] == safety["fragments"] == 0
    assert 0.5 <= manifest["chat"]["threshold"] <= 0.97 and manifest["chat"]["held_out"] > 0
    assert manifest["chat"]["objective"].startswith("response selection") and manifest["chat"]["lexicon"]
    card = model_card(manifest)
    assert "Lost on:** validation nats/char" in card and "production v1" in card


def test_eval_prints_a_candidate_beside_production(published, capsys) -> None:
    from flows.cli import main

    lake, _ = published
    storage = open_storage(lake)
    if Registry(storage).aliases("chat-owner", "엄마", "text").get("latest") == 1:
        worse = ModelOptions(train=TrainConfig(max_steps=2, eval_every=1, lr=1e-5), style_samples=2)
        train_persona(storage, "chat-owner", "엄마", 1, worse)
    args = ["eval", "--owner", "chat-owner", "--persona", "엄마", "--lake", lake]
    assert main([*args, "--version", "latest", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 2 and out["production"]["version"] == 1
    assert out["selection"]["hybrid"]["n"] > 0 and "semantic_similarity" in out["production"]["answer"]
    assert main([*args, "--version", "latest"]) == 0
    text = capsys.readouterr().out
    assert "beside production v1" in text and "| hybrid mrr |" in text


def test_chat_guardrail_notice_and_present_day_questions(published) -> None:
    lake, _ = published
    chat = PersonaChat(open_storage(lake), "chat-owner", "엄마", mode="generate")
    first = chat.reply("주말에 갈게")
    assert first.notice == NOTICE and first.text and "<phone" not in first.text
    assert chat.reply("엄마 지금 어디야?").text == PRESENT_DAY_LINE
    second = chat.reply("엄마 살아 있어?")
    assert second.text == PRESENT_DAY_LINE and second.notice is None  # the notice is for the first turn


def test_retrieve_answers_with_the_personas_real_reply(published, es_url: str) -> None:
    lake, _ = published
    storage = open_storage(lake)
    client = connect(es_url)
    embedder = default_embedder()
    assert index_persona_pairs(storage, client, "chat-owner", "엄마", 1, embedder).indexed > 400
    replies = set(
        pq.read_table(Path(lake[7:]) / "datasets/chat-owner/엄마/v1/train.parquet")["reply"].to_pylist()
    )
    replies |= set(
        pq.read_table(Path(lake[7:]) / "datasets/chat-owner/엄마/v1/validation.parquet")["reply"].to_pylist()
    )
    chat = PersonaChat(storage, "chat-owner", "엄마", client=client, embedder=embedder, mode="retrieve")
    answer = chat.reply("나 오늘 회사에서 칭찬받았어")
    assert answer.mode == "retrieved" and answer.text in replies  # a real reply of hers, word for word
    other = PersonaChat(storage, "chat-owner", "엄마", client=client, embedder=embedder, mode="retrieve")
    assert (
        other.reply("양자역학의 해밀토니안 고유값 문제").mode == "fallback"
    )  # nothing similar: no made-up memory
    hybrid = PersonaChat(storage, "chat-owner", "엄마", client=client, embedder=embedder, mode="hybrid")
    picked = hybrid.reply("주말에 갈게")
    real = [c for c in picked.candidates or [] if c["source"] == "retrieved"]
    assert real, "a stored message this close must be a candidate"
    # A real reply that fits is said, word for word: no generated candidate was even made.
    assert picked.mode == "retrieved" and picked.text in replies
    assert all(c["source"] == "retrieved" for c in picked.candidates)


def test_unknown_persona_and_cli_chat(published, capsys, monkeypatch) -> None:
    from flows.cli import main

    lake, _ = published
    with pytest.raises(RegistryError, match="no published text model for chat-owner/아빠"):
        PersonaChat(open_storage(lake), "chat-owner", "아빠")
    assert (
        main(
            [
                "chat",
                "--owner",
                "chat-owner",
                "--persona",
                "아빠",
                "--message",
                "hi",
                "--lake",
                lake,
                "--no-retrieval",
            ]
        )
        == 1
    )
    assert "rememberme: error: no published text model for chat-owner/아빠" in capsys.readouterr().err
    code = main(["chat", "--owner", "chat-owner", "--persona", "엄마", "--message", "뭐해?", "--lake", lake,
                 "--no-retrieval", "--mode", "generate", "--json"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == 1 and out["notice"] == NOTICE and out["source"] == "generated"
    assert (
        main(["models", "list", "--owner", "chat-owner", "--persona", "엄마", "--lake", lake, "--json"]) == 0
    )
    listing = json.loads(capsys.readouterr().out)
    first = listing["versions"][0]
    assert first["version"] == 1 and "production" in first["aliases"] and first["dataset_version"] == 1


@pytest.mark.parametrize("mode", ["retrieve", "generate", "hybrid"])
def test_no_mode_ever_says_a_pseudonym_back(published, mode: str, monkeypatch) -> None:
    """A real reply that held a phone number is in the memory as `<phone_1>`: never said back."""
    lake, _ = published
    chat = PersonaChat(open_storage(lake), "chat-owner", "엄마", mode=mode)
    leaked = [{"reply": "아빠 번호 바뀌었어 <phone_1> 저장해", "similarity": 0.99}]
    monkeypatch.setattr(chat, "_retrieve", lambda message, size=3: leaked)
    monkeypatch.setattr(chat, "_generate", lambda context, memories, seed: "전화해 <phone_")
    for message in ("아빠 번호 알려줘", "밥 먹었어", "잘 지냈어?"):
        reply = chat.reply(message)
        assert "<" not in reply.text and "phone" not in reply.text, (mode, reply)


def test_reindexing_a_persona_leaves_only_its_indexed_dataset_version(published, es_url: str) -> None:
    """A pair a newer dataset no longer holds (a shrunk burst, a forgotten talk) leaves chat's memory."""
    from schemas.search import PAIRS_ALIAS

    lake, _ = published
    storage, client = open_storage(lake), connect(es_url)
    embedder = default_embedder()
    first = index_persona_pairs(storage, client, "chat-owner", "엄마", 1, embedder).indexed
    stale = {"pair_id": "gone", "owner_id": "chat-owner", "persona_id": "엄마", "dataset_version": 0,
             "prompt": "예전 대화", "reply": "예전 답"}  # fmt: skip
    client.index(index=PAIRS_ALIAS, id="gone", routing="chat-owner", document=stale, refresh=True)
    again = index_persona_pairs(storage, client, "chat-owner", "엄마", 1, embedder).indexed
    client.indices.refresh(index=PAIRS_ALIAS)
    assert again == first
    assert not client.exists(index=PAIRS_ALIAS, id="gone", routing="chat-owner")
    query = {"bool": {"filter": [{"term": {"owner_id": "chat-owner"}}, {"term": {"persona_id": "엄마"}}]}}
    assert client.count(index=PAIRS_ALIAS, query=query)["count"] == first


def test_a_pairs_mapping_change_rebuilds_every_published_persona_before_the_swap(
    published, es_url: str
) -> None:
    """A pairs mapping bump fills the new index from the lake, then moves the alias, then drops the old."""
    from infra.indices import ensure_alias, generations, index_name
    from infra.text_features import default_embedder
    from schemas.search import PAIR_INDEX_BODY, PAIRS_ALIAS, PAIRS_MAPPING_VERSION
    from tasks.indexing.indexer import migrate_pairs

    lake, _ = published
    storage, client = open_storage(lake), connect(es_url)
    old = index_name(PAIRS_ALIAS, PAIRS_MAPPING_VERSION - 1)
    for index in generations(client, PAIRS_ALIAS):
        client.indices.delete(index=index)
    client.indices.create(index=old)  # what the previous deployment left: one stale document
    client.index(index=old, id="stale", document={"persona_id": "엄마", "reply": "old"}, refresh=True)
    client.indices.put_alias(index=old, name=PAIRS_ALIAS)
    seen: list[int] = []

    def rebuild(target: str) -> int:
        seen.append(client.count(index=PAIRS_ALIAS)["count"])  # the old index still serves
        return migrate_pairs(storage, client, default_embedder(), index=target)

    ensure_alias(client, PAIRS_ALIAS, PAIRS_MAPPING_VERSION, PAIR_INDEX_BODY, rebuild)
    client.indices.refresh(index=PAIRS_ALIAS)
    assert seen == [1]
    assert generations(client, PAIRS_ALIAS) == [index_name(PAIRS_ALIAS, PAIRS_MAPPING_VERSION)]
    count = client.count(index=PAIRS_ALIAS, query={"term": {"persona_id": "엄마"}})["count"]
    assert count > 400
    assert not client.exists(index=PAIRS_ALIAS, id="stale")


def test_hybrid_says_a_usable_generated_line_rather_than_the_fallback(published, monkeypatch) -> None:
    """Memory has nothing here (no search): a whole generated line is said; a piece of a word is not."""
    lake, _ = published
    storage = open_storage(lake)
    replies = pq.read_table(Path(lake[7:]) / "datasets/chat-owner/엄마/v1/train.parquet")["reply"].to_pylist()
    chat = PersonaChat(storage, "chat-owner", "엄마", mode="hybrid")
    profile = chat.calibration.profile
    whole = next(
        r for r in sorted(replies, key=len, reverse=True) if "<" not in r and not profile.is_bland(r)
    )
    monkeypatch.setattr(chat, "_generate", lambda context, memories, seed: whole)
    said = chat.reply("주말에 갈게")
    assert said.mode == "generated" and said.text == whole
    monkeypatch.setattr(chat, "_generate", lambda context, memories, seed: "쀍냈구나")  # stops mid-word
    assert profile.is_fragment("쀍냈구나") and chat.reply("주말에 갈게").mode == "fallback"


def test_small_talk_is_answered_with_one_whole_message_of_hers(published, es_url: str) -> None:
    """`make demo`'s first question: not a burst of lines about other things, not a generated piece."""
    lake, _ = published
    storage = open_storage(lake)
    client, embedder = connect(es_url), default_embedder()
    index_persona_pairs(storage, client, "chat-owner", "엄마", 1, embedder)
    folder = Path(lake[7:]) / "datasets/chat-owner/엄마/v1"
    rows = [
        row
        for split in ("train", "validation")
        for row in pq.read_table(folder / f"{split}.parquet").to_pylist()
    ]
    messages = {part for row in rows for part in row["reply_parts"]}  # her whole messages
    chat = PersonaChat(storage, "chat-owner", "엄마", client=client, embedder=embedder, mode="hybrid")
    answer = chat.reply("잘 지냈어?")
    assert answer.mode == "retrieved" and "\n" not in answer.text and answer.text in messages
