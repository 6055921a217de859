"""Which tokenizer: byte-level BPE sizes, bytes alone and Kiwi morphemes, by validation loss.

    python bench/tokenizer.py [--steps 300]

Trains the same small persona model (CPU default shape) on the bundled sample's dataset with each
tokenizer and reports validation loss in nats per character of the reply, which is comparable
across tokenizers (nats per token is not), plus training tokens per reply. Lower is better.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.settings import Settings
from infra.storage import open_storage
from models.data import Encoder
from models.gpt import GPT, GPTConfig
from models.morpheme import train_morpheme_tokenizer
from models.tokenizer import train_tokenizer
from models.train import TrainConfig, train
from tasks.datasets.build import build_dataset
from tasks.ingest.uploads import ingest_export
from tasks.training.train import nats_per_char, read_pairs

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    lake = open_storage(f"file://{tempfile.mkdtemp(prefix='rm-bench-tok-')}/lake")
    ingest_export(ROOT / "samples" / "kakao_android_ko.txt", "bench", lake, Settings())
    dataset = build_dataset(lake, "bench", "엄마")
    train_pairs = read_pairs(lake, f"{dataset.prefix}/train.parquet")
    val_pairs = read_pairs(lake, f"{dataset.prefix}/validation.parquet")
    texts = [r for _, r in train_pairs] + [t.text for c, _ in train_pairs for t in c]
    print(f"{len(train_pairs)} train / {len(val_pairs)} validation pairs, {args.steps} steps each")
    seen = set()
    candidates: list[tuple[str, Any]] = []
    for vocab in (262, 500, 1000, 2000, 4000):  # 262: the 256 bytes + specials, i.e. no merges
        tokenizer = train_tokenizer(texts, vocab)
        if tokenizer.get_vocab_size() in seen:
            continue  # the corpus has no more merges to offer
        seen.add(tokenizer.get_vocab_size())
        candidates.append(("byte-level BPE", tokenizer))
    seen.clear()
    for vocab in (500, 1000, 2000, 4000):
        morphemes = train_morpheme_tokenizer(texts, vocab)
        if morphemes.get_vocab_size() not in seen:
            seen.add(morphemes.get_vocab_size())
            candidates.append(("Kiwi morphemes", morphemes))
    for name, tokenizer in candidates:
        config = GPTConfig.cpu(tokenizer.get_vocab_size())
        encoder = Encoder(tokenizer, config.block_size)
        data = encoder.batchable([encoder.pair(c, r) for c, r in train_pairs])
        val = encoder.batchable([encoder.pair(c, r) for c, r in val_pairs])
        model = GPT(config, seed=0)
        train(model, data, val, TrainConfig(max_steps=args.steps, eval_every=50, patience=99))
        per_reply = float(val.mask.sum()) / len(val_pairs)
        loss = nats_per_char(model, encoder, val_pairs)
        print(
            f"{name:<15} vocab {tokenizer.get_vocab_size():>5}: {loss:.4f} nats/char, "
            f"{per_reply:.1f} tokens per reply"
        )


if __name__ == "__main__":
    main()
