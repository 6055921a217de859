"""models/: tokenizer, training loop, evaluation and ONNX export on tiny models the tests build."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch

from models.data import Encoder, Turn
from models.evaluate import discrimination_accuracy, style_stats, torch_logits_fn
from models.export import check_parity, export_onnx
from models.gpt import GPT, GPTConfig
from models.sampling import generate
from models.tokenizer import decode, encode, train_tokenizer
from models.train import TrainConfig, lr_at, train

# Two people who write very differently: a warm mother (반말, ~ and ㅎㅎ, food and weather) and a
# terse, formal uncle (존댓말, full stops, business words).
MOM = ["밥은 먹었니~ ㅎㅎ", "따뜻하게 입고 다녀~", "김치 보내줄게 ㅎㅎ", "엄마는 괜찮아~ 걱정 마", "일찍 자라~ ㅎㅎ",
       "반찬 더 필요하면 말해~", "비 온대 우산 챙겨~ ㅎㅎ", "사랑해 우리 딸~", "감기 조심하고~", "국 끓여 놨어 ㅎㅎ"]  # fmt: skip
UNCLE = ["네. 확인했습니다.", "회의는 세 시입니다.", "서류를 보내 주십시오.", "알겠습니다. 처리하겠습니다.",
         "내일 연락드리겠습니다.", "일정을 조정하겠습니다.", "검토 후 회신하겠습니다.", "감사합니다.",
         "보고서를 확인했습니다.", "계약서를 준비하겠습니다."]  # fmt: skip
USER = ["뭐해?", "오늘 어땠어?", "나 회사 끝났어", "주말에 시간 돼?", "연락 줘", "잘 지내?"]


def _pairs(lines: list[str], n: int, seed: int) -> list[tuple[list[Turn], str]]:
    rng = random.Random(seed)
    return [([Turn(rng.choice(USER), False)], rng.choice(lines)) for _ in range(n)]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(MOM * 20 + UNCLE * 20 + USER * 20, vocab_size=400)


def _config(tokenizer, **kw) -> GPTConfig:
    return GPTConfig(
        vocab_size=tokenizer.get_vocab_size(), block_size=48, n_layer=2, n_head=2, d_model=48, **kw
    )


def _fit(tokenizer, lines: list[str], steps: int = 120, seed: int = 1, model: GPT | None = None):
    encoder = Encoder(tokenizer, 48)
    data = encoder.batchable([encoder.pair(c, r) for c, r in _pairs(lines, 200, seed)])
    val = encoder.batchable([encoder.pair(c, r) for c, r in _pairs(lines, 40, seed + 100)])
    model = model or GPT(_config(tokenizer), seed=seed)
    result = train(
        model, data, val, TrainConfig(max_steps=steps, eval_every=20, batch_size=16, seed=seed, patience=50)
    )
    return model, result


def test_tokenizer_round_trips_korean_and_emoji(tokenizer) -> None:
    text = "밥은 먹었니~ ㅎㅎ ❤️ 새로운단어"
    assert decode(tokenizer, encode(tokenizer, text)) == text
    assert len(encode(tokenizer, "밥은 먹었니~ ㅎㅎ")) < len("밥은 먹었니~ ㅎㅎ".encode())  # merges learned


def test_learning_rate_warms_up_then_decays() -> None:
    config = TrainConfig(max_steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(0, config) == pytest.approx(1e-4)
    assert lr_at(9, config) == pytest.approx(1e-3)
    assert lr_at(99, config) == pytest.approx(1e-4, rel=0.05)
    assert lr_at(50, config) < lr_at(20, config)


def test_a_tiny_model_learns_and_training_is_deterministic(tokenizer) -> None:
    _, result = _fit(tokenizer, MOM)
    first, last = result.history[0]["val_loss"], result.best_val_loss
    assert last < first * 0.7  # the loss falls
    assert result.history[0]["train_loss"] > result.history[-1]["train_loss"]
    _, again = _fit(tokenizer, MOM)
    assert again.history == result.history  # same seed, same curve


def test_training_resumes_from_its_checkpoint_to_the_same_result(tokenizer) -> None:
    encoder = Encoder(tokenizer, 48)
    data = encoder.batchable([encoder.pair(c, r) for c, r in _pairs(MOM, 100, 3)])
    val = encoder.batchable([encoder.pair(c, r) for c, r in _pairs(MOM, 20, 4)])
    config = TrainConfig(max_steps=60, eval_every=20, batch_size=8, seed=5, patience=50)
    whole = train(GPT(_config(tokenizer), seed=1), data, val, config)

    saved: list[dict[str, Any]] = []
    partial = config

    def keep(state: dict[str, Any]) -> None:
        if state["step"] == 40:
            saved.append({k: (v if not isinstance(v, torch.Tensor) else v.clone()) for k, v in state.items()})
            raise KeyboardInterrupt  # the machine goes away after the checkpoint at step 40

    with pytest.raises(KeyboardInterrupt):
        train(GPT(_config(tokenizer), seed=1), data, val, partial, on_checkpoint=keep)
    resumed = train(GPT(_config(tokenizer), seed=1), data, val, partial, resume=saved[0])
    assert [h["val_loss"] for h in resumed.history] == pytest.approx(
        [h["val_loss"] for h in whole.history], rel=1e-5
    )
    assert resumed.steps == whole.steps


def test_two_personas_are_told_apart_by_their_models(tokenizer) -> None:
    base, _ = _fit(tokenizer, MOM + UNCLE, steps=60, seed=2)
    mom = GPT(base.config)
    mom.load_state_dict(base.state_dict())
    uncle = GPT(base.config)
    uncle.load_state_dict(base.state_dict())
    _fit(tokenizer, MOM, steps=80, seed=3, model=mom)
    _fit(tokenizer, UNCLE, steps=80, seed=4, model=uncle)
    encoder = Encoder(tokenizer, 48)
    held_mom = encoder.batchable([encoder.pair(c, r) for c, r in _pairs(MOM, 40, 50)])
    held_uncle = encoder.batchable([encoder.pair(c, r) for c, r in _pairs(UNCLE, 40, 60)])
    assert discrimination_accuracy(mom, uncle, held_mom, held_uncle) >= 0.9


def test_onnx_export_matches_torch_on_several_shapes(tokenizer) -> None:
    model, _ = _fit(tokenizer, MOM, steps=20)
    onnx_bytes = export_onnx(model)
    report = check_parity(model, onnx_bytes, shapes=[(1, 2), (1, 13), (4, 31), (2, 48)])
    assert report.passed and report.max_abs_diff <= 1e-4


def test_a_broken_export_fails_the_parity_check(tokenizer) -> None:
    model, _ = _fit(tokenizer, MOM, steps=20)
    onnx_bytes = export_onnx(model)
    with torch.no_grad():
        model.head.weight.add_(0.5)  # the torch model changed after export
    assert not check_parity(model, onnx_bytes).passed


def test_sampling_is_seeded_and_stops_at_eos(tokenizer) -> None:
    model, _ = _fit(tokenizer, MOM, steps=80)
    encoder = Encoder(tokenizer, 48)
    prompt = encoder.prompt([Turn("뭐해?", False)], budget=30)
    a = generate(torch_logits_fn(model), prompt, encoder.eos, 48, max_new=20, seed=7)
    b = generate(torch_logits_fn(model), prompt, encoder.eos, 48, max_new=20, seed=7)
    assert a == b and len(a) <= 20
    greedy = tokenizer.decode(
        generate(torch_logits_fn(model), prompt, encoder.eos, 48, temperature=0), skip_special_tokens=True
    )
    assert greedy.strip() in MOM or "~" in greedy  # it talks like mom


def test_style_statistics() -> None:
    stats = style_stats(["밥 먹었니~ ㅎㅎ", "사랑해 ❤️", "네. 확인했습니다."])
    assert (
        stats.n == 3 and stats.laugh_rate == pytest.approx(1 / 3) and stats.emoji_rate == pytest.approx(1 / 3)
    )
    assert np.isclose(stats.length_mean, np.mean([9, 6, 10]))


def test_lora_trains_only_adapters_and_merges_to_the_same_function(tokenizer) -> None:
    from models.lora import apply_lora, merge_lora, trainable_parameters

    base, _ = _fit(tokenizer, MOM + UNCLE, steps=40, seed=2)
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    full = trainable_parameters(base)
    apply_lora(base, rank=4)
    assert 0 < trainable_parameters(base) < full / 3
    encoder = Encoder(tokenizer, 48)
    before = float(sequence_loss(base, encoder, UNCLE))
    _fit(tokenizer, UNCLE, steps=60, seed=9, model=base)
    assert float(sequence_loss(base, encoder, UNCLE)) < before  # the adapters learned
    checked = 0
    for name, value in base.state_dict().items():
        original = name.replace(".base.", ".")
        if original in frozen and not name.endswith((".a", ".b")):
            assert torch.equal(value, frozen[original]), name  # the base did not move
            checked += 1
    assert checked == len(frozen)
    ids = torch.randint(tokenizer.get_vocab_size(), (2, 20))
    with torch.no_grad():
        adapted = base(ids)
        merge_lora(base)
        assert torch.allclose(base(ids), adapted, atol=1e-5)
    assert check_parity(base, export_onnx(base)).passed


def sequence_loss(model: GPT, encoder: Encoder, lines: list[str]) -> float:
    from models.train import evaluate_loss

    data = encoder.batchable([encoder.pair(c, r) for c, r in _pairs(lines, 40, 77)])
    return evaluate_loss(model, data, torch.device("cpu"))


@pytest.mark.slow
def test_morpheme_tokenizer_never_merges_across_morphemes_and_round_trips() -> None:
    from models.morpheme import MorphemeTokenizer, train_morpheme_tokenizer

    tokenizer = train_morpheme_tokenizer(MOM * 5 + UNCLE * 5, vocab_size=400)
    assert tokenizer.get_vocab_size() <= 400 and tokenizer.token_to_id("<persona>") == 3
    assert tokenizer.segment("확인했습니다.")[:2] == ["확인", "했"]  # 했 (하+었) stays whole
    for text in ["밥은 먹었니~ ㅎㅎ", "  처음 보는 낱말 😊\n다음 줄", ""]:
        assert tokenizer.decode(tokenizer.encode(text).ids) == text
    whole = tokenizer.encode("확인했습니다").ids
    pieces = tokenizer.segment("확인했습니다")
    assert whole == [i for piece in pieces for i in tokenizer.bpe.encode(piece, add_special_tokens=False).ids]
    assert len(tokenizer.encode("확인").ids) == 1  # a frequent morpheme is one token
    again = MorphemeTokenizer.from_str(tokenizer.to_str())
    assert again.encode("밥은 먹었니~").ids == tokenizer.encode("밥은 먹었니~").ids


def test_mixed_precision_path_trains_with_float32_master_weights(tokenizer) -> None:
    # The bf16 autocast path CUDA takes by default, run on the CPU (no GPU is lent to the tests).
    encoder = Encoder(tokenizer, 48)
    data = encoder.batchable([encoder.pair(c, r) for c, r in _pairs(MOM, 200, 3)])
    val = encoder.batchable([encoder.pair(c, r) for c, r in _pairs(MOM, 40, 103)])
    model = GPT(_config(tokenizer), seed=3)
    config = TrainConfig(max_steps=80, eval_every=20, patience=50, seed=3, precision="bf16", device="cpu")
    result = train(model, data, val, config)
    assert result.history[-1]["val_loss"] < result.history[0]["train_loss"] * 0.7
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with pytest.raises(ValueError, match="precision"):
        train(model, data, val, TrainConfig(max_steps=1, precision="fp8"))


def test_reply_logprobs_in_padded_batches_score_each_reply_as_alone(tokenizer) -> None:
    from models.sampling import reply_logprob, reply_logprobs

    model, _ = _fit(tokenizer, MOM, steps=60)
    encoder, logits_fn = Encoder(tokenizer, 48), torch_logits_fn(model)
    # A context longer than the block: every row is cut from the left, to different lengths.
    context = [Turn(text, i % 2 == 1) for i, text in enumerate(USER * 3)]
    replies = [*MOM, *UNCLE, "", "ㅎ"]

    def alone(reply: str) -> float:  # the whole-sequence formula, one pair per forward pass
        ids, mask = encoder.pair(context, reply)
        ids, mask = ids[-48:], mask[-48:]
        logits = logits_fn(np.asarray([ids], dtype=np.int64))[0, :-1].astype(np.float64)
        logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
        logp -= logits.max(-1, keepdims=True)
        weights = np.asarray(mask[1:], dtype=np.float64)
        return float((logp[np.arange(len(ids) - 1), ids[1:]] * weights).sum() / max(weights.sum(), 1.0))

    expected = [alone(r) for r in replies]
    for batch in (1, 3, 64):
        got = reply_logprobs(logits_fn, encoder, context, replies, batch=batch)
        assert np.allclose(got, expected, atol=1e-4), batch
    assert reply_logprob(logits_fn, encoder, context, MOM[0]) == pytest.approx(expected[0], abs=1e-4)
    # And it is the persona's model: her own lines are likelier than the uncle's.
    assert np.mean(expected[: len(MOM)]) > np.mean(expected[len(MOM) : len(MOM) + len(UNCLE)])
