"""A tiny speech recogniser built by the tests (wav2vec2-CTC, random body) that always hears "가"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


def save_tiny_asr(directory: Path, word: str = "가") -> Path:
    """Save a model whose CTC head always prefers `word`'s character, with its processor."""
    import transformers

    hf: Any = transformers  # its classes are untyped
    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, word: 3}
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer: Any = hf.Wav2Vec2CTCTokenizer(
        str(directory / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    extractor: Any = hf.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, return_attention_mask=False
    )
    processor: Any = hf.Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)
    processor.save_pretrained(directory)
    config: Any = hf.Wav2Vec2Config(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, pad_token_id=0,
    )  # fmt: skip
    model: Any = hf.Wav2Vec2ForCTC(config)
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()
        model.lm_head.bias[3] = 10.0
    model.save_pretrained(directory)
    return directory
