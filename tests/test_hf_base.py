"""A pretrained base from a local Hugging Face directory: load, wrap, LoRA, import, fine-tune, chat.

The tests build their own tiny Llama and GPT-2 directories (random weights, a tokenizer trained
here, saved with `save_pretrained`), so nothing downloads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from infra.registry import Registry
from infra.settings import Settings
from infra.storage import open_storage
from models.export import check_parity, export_onnx
from models.hf import HFCausalLM, load_hf_directory
from models.lm import model_from_config
from models.lora import apply_lora, merge_lora, trainable_parameters
from models.tokenizer import SPECIALS
from models.train import TrainConfig
from parsers.errors import InputError
from tasks.datasets.build import build_dataset
from tasks.ingest.uploads import ingest_export
from tasks.replies.chat import PersonaChat
from tasks.runs.markdown import model_card
from tasks.training.base_model import import_base
from tasks.training.train import ModelOptions, train_persona
from tests.hf_support import foreign_tokenizer, save_tiny_hf

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def hf_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_hf(tmp_path_factory.mktemp(request.param), request.param)


def test_a_local_directory_loads_with_our_turn_markers_and_round_trips(hf_dir: Path) -> None:
    model, tokenizer = load_hf_directory(hf_dir, block_size=128)
    original = foreign_tokenizer().get_vocab_size()
    assert all(tokenizer.token_to_id(t) is not None for t in SPECIALS)
    assert tokenizer.get_vocab_size() == original + len(SPECIALS) == model.config.vocab_size
    assert model.config.block_size == (96 if "llama" in hf_dir.name else 64)  # capped by the model
    ids = torch.randint(model.config.vocab_size, (2, 11))
    with torch.no_grad():
        logits = model(ids)
    assert logits.shape == (2, 11, model.config.vocab_size)

    # A checkpoint stores config.json + state dict; rebuilding from them gives the same function.
    rebuilt = model_from_config(json.loads(json.dumps(model.config.to_dict())))
    assert isinstance(rebuilt, HFCausalLM)
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(rebuilt.eval()(ids), logits, atol=1e-6)


def test_wrapping_keeps_the_pretrained_function(hf_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    reference: Any = AutoModelForCausalLM.from_pretrained(hf_dir, local_files_only=True)
    reference.eval()
    model, _ = load_hf_directory(hf_dir, block_size=64)
    n = reference.config.vocab_size
    ids = torch.randint(n, (1, 9))
    with torch.no_grad():
        expected = reference(input_ids=ids).logits
        got = model(ids)[..., :n]  # the added marker rows come after the pretrained vocabulary
    assert torch.allclose(got, expected, atol=1e-5)  # GPT-2's Conv1D became an equal Linear


def test_lora_adapts_every_projection_and_merges_exactly(hf_dir: Path) -> None:
    model, _ = load_hf_directory(hf_dir, block_size=64)
    total = sum(p.numel() for p in model.parameters())
    apply_lora(model, rank=2)
    assert 0 < trainable_parameters(model) < total // 5
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)  # as if trained: merged must equal adapted
    ids = torch.randint(model.config.vocab_size, (2, 7))
    with torch.no_grad():
        adapted = model(ids)
        merge_lora(model)
        merged = model(ids)
    assert torch.allclose(adapted, merged, atol=1e-5)
    assert not any("LoRA" in type(m).__name__ for m in model.modules())


def test_onnx_export_of_a_wrapped_model_passes_parity(hf_dir: Path) -> None:
    model, _ = load_hf_directory(hf_dir, block_size=64)
    report = check_parity(model, export_onnx(model))
    assert report.passed, report


def test_imported_base_is_fine_tuned_published_and_chats(
    hf_dir: Path, tmp_path: Path, family_export: Path
) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    base = import_base(storage, str(hf_dir), note="test")
    assert base["kind"] == "base" and base["corpus"]["imported_from"] == str(hf_dir.resolve())
    assert base["parity"]["max_abs_diff"] <= 1e-4
    ingest_export(family_export, "hf-owner", storage, Settings())
    dataset = build_dataset(storage, "hf-owner", "엄마")
    quick = TrainConfig(max_steps=30, eval_every=10, patience=99)
    lora = train_persona(
        storage, "hf-owner", "엄마", dataset.version, ModelOptions(train=quick, style_samples=2)
    )
    assert lora["base_version"] == base["version"]
    assert lora["hyper_parameters"]["fine_tune"] == "lora rank 8"  # the default on a pretrained base
    assert lora["hyper_parameters"]["model"]["arch"] == "hf"
    card = model_card(lora)
    assert f"pretrained {'llama' if 'llama' in hf_dir.name else 'gpt2'} from" in card
    assert "lora rank 8 fine-tune" in card and "None layers" not in card
    assert lora["metrics"]["val_loss"] < lora["curve"][0]["train_loss"]
    full = train_persona(
        storage, "hf-owner", "엄마", dataset.version, ModelOptions(train=quick, lora_rank=0, style_samples=2)
    )
    assert full["hyper_parameters"]["fine_tune"] == "full"
    assert (
        full["hyper_parameters"]["train"]["lr"] == ModelOptions().pretrained_lr
    )  # capped for a pretrained base
    gate = full["promotion"]  # the gate compared two wrapped models on the same pairs
    assert gate["current_version"] == lora["version"]
    assert gate["new_nats_per_char"] == pytest.approx(full["metrics"]["val_nats_per_char"])
    assert gate["promote"] is (not gate["lost_on"])  # it moves production only if it lost on nothing

    chat = PersonaChat(storage, "hf-owner", "엄마", version=lora["version"], mode="generate")
    reply = chat.reply("엄마 뭐해?")
    assert reply.mode == "generated" and reply.notice
    assert "\ufffd" not in reply.text  # a reply cut inside a multi-byte character is never shown broken
    assert Registry(storage).load("hf-owner", "엄마", "text", lora["version"]).files["tokenizer.json"]


def test_a_directory_that_is_not_a_model_is_a_one_line_error(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no config\.json"):
        import_base(storage, str(tmp_path / "empty"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    (broken / "tokenizer.json").write_text(foreign_tokenizer().to_str())
    with pytest.raises(InputError, match="not a loadable causal language model") as info:
        import_base(storage, str(broken))
    assert "\n" not in str(info.value)
    assert not storage.list("models/")


def test_cli_refuses_a_missing_directory_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    assert main(["train-base", "--from-hf", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rememberme: error:") and "no config.json" in err and "\n" not in err


def test_a_model_onnx_cannot_carry_is_refused_before_anything_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.training.train

    def too_large(model: Any) -> bytes:
        raise ValueError("Message onnx.ModelProto exceeds maximum protobuf size of 2GB: 3000000000")

    monkeypatch.setattr(
        tasks.training.train, "export_onnx", too_large
    )  # what a >2 GB model makes the exporter do
    storage = open_storage(f"file://{tmp_path}/lake")
    with pytest.raises(InputError, match=r"cannot be exported to ONNX \(ValueError: Message") as info:
        import_base(storage, str(save_tiny_hf(tmp_path / "big")))
    assert "\n" not in str(info.value)
    assert not storage.list("models/")
