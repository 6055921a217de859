"""Tiny Hugging Face model directories built by the tests themselves (nothing downloads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

TEXTS = ["밥은 먹었니~ ㅎㅎ", "응 먹었어", "오늘 비 온대 우산 챙겨", "사랑해 우리 딸", "ㅋㅋㅋ 알겠어"] * 40


def foreign_tokenizer() -> Tokenizer:
    """A tokenizer that knows none of our turn markers (as a downloaded model's would not)."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TEXTS, trainer=trainer)
    return tokenizer


def save_tiny_hf(directory: Path, arch: str = "llama") -> Path:
    """A tiny random-weight Llama or GPT-2 with its fast tokenizer, as `save_pretrained` writes it."""
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    tokenizer = foreign_tokenizer()
    vocab = tokenizer.get_vocab_size()
    torch.manual_seed(0)
    if arch == "llama":
        config: Any = LlamaConfig(
            vocab_size=vocab, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=96,
            bos_token_id=None, eos_token_id=1, pad_token_id=None,
        )  # fmt: skip
        model: Any = LlamaForCausalLM(config)
    else:
        config = GPT2Config(vocab_size=vocab, n_embd=48, n_layer=2, n_head=4, n_positions=64,
                            bos_token_id=1, eos_token_id=1)  # fmt: skip
        model = GPT2LMHeadModel(config)
    model.save_pretrained(directory)
    fast: Any = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>")  # type: ignore[no-untyped-call]
    fast.save_pretrained(directory)
    return directory


def save_tiny_encoder(directory: Path, pooling: str = "mean", prompts: dict[str, str] | None = None) -> Path:
    """A tiny random-weight BERT sentence encoder, laid out as sentence-transformers saves one.

    `pooling` is written to `1_Pooling/config.json` (cls or mean); `prompts` (e.g. e5's
    `query: `/`passage: `) to `config_sentence_transformers.json`.
    """
    import json

    from tokenizers import normalizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials, show_progress=False)
    tokenizer.train_from_iterator([*TEXTS, "query: passage:"], trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=128)  # fmt: skip
    BertModel(config).save_pretrained(directory)
    fast: Any = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    fast.save_pretrained(directory)
    (directory / "1_Pooling").mkdir(exist_ok=True)
    modes = {"pooling_mode_cls_token": pooling == "cls", "pooling_mode_mean_tokens": pooling == "mean"}
    (directory / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, **modes})
    )
    if prompts is not None:
        (directory / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    return directory
