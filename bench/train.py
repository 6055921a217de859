"""Training throughput of our loop vs a plain loop on the same model, and ONNX reply latency.

    python bench/train.py [--steps 150] [--replies 50]

1. Tokens/s: `models.train.train` (warmup + cosine schedule, clipping, AMP when on GPU,
   per-step bookkeeping, one evaluation at the end, batches cut to their longest sequence)
   against a plain loop written here (sample, forward, masked loss, backward, AdamW step on
   block-padded batches) on the same data, model shape and batch size. Target: ours >= 0.95x.
   A third run gives the plain loop the same padding trim, to show what the bookkeeping costs.
2. ONNX reply latency: a persona model exported to ONNX answers with onnxruntime (one reply =
   up to 40 sampled tokens after a conversation prompt); p50 and p90 over `--replies` replies.
   Target: p50 < 50 ms on CPU.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from models.data import Encoder, Turn
from models.export import export_onnx
from models.gpt import GPT, GPTConfig
from models.sampling import generate
from models.tokenizer import train_tokenizer
from models.train import TrainConfig, masked_loss, pick_device, train, trim
from parsers.kakao.synth import PERSONA_LINES, USER_LINES


def corpus(n: int, seed: int = 0) -> list[tuple[list[Turn], str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        context = [Turn(rng.choice(USER_LINES), False) for _ in range(rng.randint(1, 4))]
        pairs.append((context, " ".join(rng.choice(PERSONA_LINES) for _ in range(rng.randint(1, 3)))))
    return pairs


def plain_loop(
    model: GPT, ids: torch.Tensor, mask: torch.Tensor, steps: int, batch: int, trimmed: bool = False
) -> float:
    device = pick_device()
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    tokens = 0
    start = time.perf_counter()
    for _ in range(steps):
        rows = torch.randint(len(ids), (batch,), generator=generator)
        x, m = trim(ids[rows], mask[rows]) if trimmed else (ids[rows], mask[rows])
        x, m = x.to(device), m.to(device)
        loss = masked_loss(model(x), x, m)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        tokens += int((x != 0).sum())
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--replies", type=int, default=50)
    args = parser.parse_args()
    pairs = corpus(3000)
    tokenizer = train_tokenizer([r for _, r in pairs] + [t.text for c, _ in pairs for t in c], 2000)
    config = GPTConfig.cpu(tokenizer.get_vocab_size())
    encoder = Encoder(tokenizer, config.block_size)
    data = encoder.batchable([encoder.pair(c, r) for c, r in pairs])
    val = encoder.batchable([encoder.pair(c, r) for c, r in corpus(200, 1)])
    batch = 16

    results: dict[str, list[float]] = {"plain": [], "plain-trimmed": [], "ours": []}
    for round_ in range(2):  # alternate, so no side always runs warm
        for name in ("plain", "plain-trimmed", "ours") if round_ == 0 else ("ours", "plain-trimmed", "plain"):
            model = GPT(config, seed=round_)
            if name.startswith("plain"):
                cut = name == "plain-trimmed"
                results[name].append(plain_loop(model, data.ids, data.mask, args.steps, batch, cut))
            else:
                cfg = TrainConfig(max_steps=args.steps, batch_size=batch, eval_every=args.steps, patience=99)
                results[name].append(train(model, data, val, cfg).tokens_per_s)
    plain, trimmed, ours = (max(results[k]) for k in ("plain", "plain-trimmed", "ours"))
    device = pick_device()
    print(f"model {sum(p.numel() for p in GPT(config).parameters()):,} parameters, batch {batch}, "
          f"block {config.block_size}, {device}, {torch.get_num_threads()} threads")  # fmt: skip
    ratio = ours / plain
    print(f"plain loop {plain:,.0f} tokens/s, our loop {ours:,.0f} tokens/s: ratio {ratio:.2f}x "
          "(target >= 0.95x)")  # fmt: skip
    print(f"plain loop with the same padding trim {trimmed:,.0f} tokens/s: our loop's bookkeeping costs "
          f"{ours / trimmed:.2f}x")  # fmt: skip

    import onnxruntime as ort

    model = GPT(config, seed=0)
    train(model, data, val, TrainConfig(max_steps=100, eval_every=100, patience=99))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(export_onnx(model), options, providers=["CPUExecutionProvider"])

    def logits(ids: np.ndarray) -> np.ndarray:
        out: np.ndarray = session.run(["logits"], {"input_ids": ids})[0]
        return out

    latencies, lengths = [], []
    rng = random.Random(5)
    for i in range(args.replies):
        context = [Turn(rng.choice(USER_LINES), False) for _ in range(3)]
        prompt = encoder.prompt(context, budget=config.block_size - 40)
        start = time.perf_counter()
        out = generate(logits, prompt, encoder.eos, config.block_size, max_new=40, seed=i)
        latencies.append(time.perf_counter() - start)
        lengths.append(len(out))
    p50 = statistics.median(latencies) * 1000
    p90 = float(np.percentile(latencies, 90)) * 1000
    mean = statistics.mean(lengths)
    print(f"ONNX reply latency over {args.replies} replies (mean {mean:.1f} tokens, max 40): "
          f"p50 {p50:.1f} ms, p90 {p90:.1f} ms (target p50 < 50 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
