"""Voice alignment: learned (monotonic search + duration predictor) vs uniform, on held-out speech.

    python bench/voice.py [--steps 600] [--sentences 48] [--speeds 175]

espeak-ng reads Korean sentences (at one speed by default; `--speeds 110,140,170,200` varies
the pace per sentence, which no text-only model can predict, so length errors then grow for
both); both variants train the same acoustic model for the same steps on the same
utterances, then synthesise the held-out sentences exactly as `rememberme speak` does (learned:
predicted durations; uniform: the speaker's average frames per jamo). Reported per variant:
log-mel L1 against the real recording after dynamic time warping (lower is closer speech), and the
length error |synthesised - real| / real. Ratios are learned / uniform, measured in this run.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from pydub import AudioSegment

from models.align import index_from_durations, uniform_index
from models.voice import (
    AcousticModel,
    MelConfig,
    VoiceConfig,
    calibrate_pace,
    frames_from_log_durations,
    jamo_ids,
    log_mel,
    train_voice,
)

SUBJECTS = ["엄마는", "우리 딸은", "오늘 아침에", "주말에는", "할머니 댁에서", "비가 오면"]
PREDICATES = ["밥을 먹었어", "따뜻하게 입고 다녀", "일찍 자라", "김치를 보내줄게", "우산을 챙겨",
              "전화해 줘", "산책을 갔어", "사진을 찍었지"]  # fmt: skip


def dtw_l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean L1 between frames of `a` and `b` along their cheapest monotonic warping path."""
    cost = np.abs(a[:, None, :] - b[None, :, :]).mean(-1)
    total = np.full((len(a) + 1, len(b) + 1), np.inf)
    total[0, 0] = 0.0
    steps = np.zeros_like(total)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            options = (total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
            k = int(np.argmin(options))
            prev = ((i - 1, j - 1), (i - 1, j), (i, j - 1))[k]
            total[i, j] = cost[i - 1, j - 1] + options[k]
            steps[i, j] = steps[prev] + 1
    return float(total[-1, -1] / steps[-1, -1])


def synthesise(
    model: AcousticModel, ids: torch.Tensor, pace: float | None, frames_per_jamo: float
) -> np.ndarray:
    """Log-mel of `ids` as `speak` renders it (`pace` given: learned durations)."""
    with torch.no_grad():
        if pace is not None:
            log_dur = model.log_durations(ids.unsqueeze(0), torch.tensor([0]))[0].numpy()
            index = index_from_durations(frames_from_log_durations(log_dur, pace))
        else:
            index = uniform_index(len(ids), max(4, round(len(ids) * frames_per_jamo)))
        mel: np.ndarray = model(ids.unsqueeze(0), torch.from_numpy(index), torch.tensor([0]))[0].numpy()
    return mel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--sentences", type=int, default=48)
    parser.add_argument("--speeds", default="175", help="espeak-ng words per minute, comma-separated")
    args = parser.parse_args()
    rng = random.Random(7)
    tmp = Path(tempfile.mkdtemp(prefix="rm-bench-voice-"))
    config = MelConfig()
    items = []
    for i in range(args.sentences):
        text = f"{rng.choice(SUBJECTS)} {rng.choice(PREDICATES)}"
        out = tmp / f"{i}.wav"
        speed = rng.choice(args.speeds.split(","))
        subprocess.run(["espeak-ng", "-v", "ko", "-s", speed, text, "-w", str(out)], check=True)
        audio = AudioSegment.from_wav(out).set_channels(1).set_frame_rate(config.sample_rate)
        audio = audio.strip_silence(silence_len=100, silence_thresh=-50, padding=30)
        samples = np.frombuffer(audio.set_sample_width(2).raw_data, dtype=np.int16).astype(np.float32) / 32768
        items.append((torch.tensor(jamo_ids(text)), torch.from_numpy(log_mel(samples, config))))
    n_val = max(4, len(items) // 6)
    train_items, val_items = items[n_val:], items[:n_val]
    frames_per_jamo = sum(len(m) for _, m in train_items) / sum(len(i) for i, _ in train_items)
    print(f"{len(train_items)} training / {len(val_items)} held-out utterances, {args.steps} steps each")
    results = {}
    for alignment in ("uniform", "learned"):
        model = AcousticModel(VoiceConfig(), seed=13)
        start = time.perf_counter()
        train_voice(model, train_items, val_items[:2], 0, steps=args.steps, alignment=alignment)
        seconds = time.perf_counter() - start
        pace = calibrate_pace(model, train_items) if alignment == "learned" else None
        distances, errors = [], []
        for ids, real in val_items:
            fake = synthesise(model, ids, pace, frames_per_jamo)
            distances.append(dtw_l1(fake, real.numpy()))
            errors.append(abs(len(fake) - len(real)) / len(real))
        results[alignment] = (float(np.mean(distances)), float(np.mean(errors)))
        print(f"{alignment:>8}: DTW log-mel L1 {results[alignment][0]:.4f}, "
              f"length error {results[alignment][1]:.1%}, training {seconds:.0f} s")  # fmt: skip
    (ul1, uerr), (ll1, lerr) = results["uniform"], results["learned"]
    print(f"learned / uniform: DTW L1 {ll1 / ul1:.2f}x, length error {lerr / max(uerr, 1e-9):.2f}x")


if __name__ == "__main__":
    main()
