"""Does the voice sound like the person? Today's model against unit selection, on four voices.

    python bench/voice.py [--steps 300] [--train 60] [--test 8]

Four espeak-ng Korean voices, two of them only slightly apart (the same voice at pitch 50 vs 58
and rate 160 vs 172), each reads `--train` sentences (its recordings: a few minutes) and `--test`
held-out ones. Per voice, an acoustic model trains from scratch as `train_user_voice` does; then
the held-out sentences are synthesised two ways and rendered by Griffin-Lim as `rememberme speak`
does: `model` (the acoustic model's frames, today's voice) and `units` (the voice's own recorded
sounds selected and crossfaded, models/units.py; the model only for jamo they never say); `real`
is the held-out recordings themselves, the ceiling of every measure.
Scored by tasks/voice/similarity.py against the voice's real recordings: speaker cosine to its
real centroid beside its real held-out sentences' own, identification among the four voices and
the eight reference voices, length against the real sentence, pitch correlation; and CPU seconds
per second of audio. Issue 29 asks: >= 95 % identified (the close pair included), mean cosine
within 0.03 of the real sentences', length within 5 %, under 1 s of CPU per second of audio.
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

from models.align import index_from_durations
from models.units import Selector, build_wave_inventory, model_fallback
from models.voice import (
    AcousticModel,
    MelConfig,
    VoiceConfig,
    aligned_index,
    calibrate_pace,
    frames_from_log_durations,
    griffin_lim,
    jamo_ids,
    log_mel,
    train_voice,
)
from tasks.voice.similarity import (
    Utterance,
    centroid,
    encoder_weights,
    load_encoder,
    reference_voices,
    score_voice,
)

VOICES = {"f1-p50": ("ko+f1", 50, 160), "f1-p58": ("ko+f1", 58, 172), "m3-p40": ("ko+m3", 40, 145),
          "f2-p70": ("ko+f2", 70, 185)}  # fmt: skip
SUBJECTS = ["엄마는", "우리 딸은", "오늘 아침에", "주말에는", "할머니 댁에서", "비가 오면", "아빠가",
            "우리 강아지는", "학교 끝나고", "저녁에는"]  # fmt: skip
PREDICATES = ["밥을 먹었어", "따뜻하게 입고 다녀", "일찍 자라", "김치를 보내줄게", "우산을 챙겨",
              "전화해 줘", "산책을 갔어", "사진을 찍었지", "공부 열심히 해", "시장에 다녀왔어",
              "감기 조심해", "많이 보고 싶다"]  # fmt: skip


def sentences(count: int, seed: int, predicates: int | None = None) -> list[str]:
    """Sentences of a subject and one or two predicates (or `predicates` of them): everyday words."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = predicates or (2 if rng.random() < 0.5 else 1)
        out.append(" ".join([rng.choice(SUBJECTS), *(rng.choice(PREDICATES) for _ in range(n))]))
    return out


def record(voice: tuple[str, int, int], texts: list[str], folder: Path, config: MelConfig) -> list[Utterance]:
    """espeak-ng reads each text; silence trimmed; mono at the model's rate."""
    code, pitch, rate = voice
    out = []
    for i, text in enumerate(texts):
        path = folder / f"{code}-{pitch}-{i}.wav"
        command = ["espeak-ng", "-v", code, "-p", str(pitch), "-s", str(rate), "-w", str(path), text]
        subprocess.run(command, check=True, capture_output=True)
        audio = AudioSegment.from_wav(path).set_channels(1).set_frame_rate(config.sample_rate)
        audio = audio.strip_silence(silence_len=100, silence_thresh=-50, padding=30)
        samples = np.frombuffer(audio.set_sample_width(2).raw_data, dtype=np.int16).astype(np.float32) / 32768
        out.append(Utterance(text, samples, config.sample_rate))
    return out


def model_mel(model: AcousticModel, ids: torch.Tensor, pace: float) -> tuple[np.ndarray, np.ndarray]:
    """The acoustic model's log-mel of `ids` (predicted durations) and its frame -> jamo index."""
    with torch.no_grad():
        log_dur = model.log_durations(ids.unsqueeze(0), torch.tensor([0]))[0].numpy()
        index = index_from_durations(frames_from_log_durations(log_dur, pace))
        mel = model(ids.unsqueeze(0), torch.from_numpy(index), torch.tensor([0]))[0].numpy()
    return mel, index[0]


def main() -> None:
    """Record, train, synthesise both ways, score, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--train", type=int, default=60)
    parser.add_argument("--test", type=int, default=8)
    args = parser.parse_args()
    weights = encoder_weights()
    if weights is None:
        raise SystemExit("the speaker encoder is not installed (make setup installs it)")
    encoder = load_encoder(str(weights))
    config = MelConfig()
    folder = Path(tempfile.mkdtemp(prefix="rm-bench-voice-"))
    # Held-out sentences of three predicates (about 3 s): a speaker embedding of a 1 s sentence is noisy.
    train_texts, test_texts = sentences(args.train, 1), sentences(args.test, 2, predicates=3)
    data = {name: (record(v, train_texts, folder, config), record(v, test_texts, folder, config))
            for name, v in VOICES.items()}  # fmt: skip
    centroids = {name: centroid(encoder, train) for name, (train, _) in data.items()}
    references = reference_voices()
    minutes = np.mean([sum(len(u.samples) for u in t) / config.sample_rate / 60 for t, _ in data.values()])
    print(f"{len(VOICES)} voices, {args.train} recordings each ({minutes:.1f} min), {args.test} held out, "
          f"{args.steps} steps; told apart from {len(VOICES) - 1} other voices and "
          f"{len(references)} reference voices")  # fmt: skip
    print(f"{'voice':8} {'mode':6} {'cosine':>7} {'real':>6} {'gap':>6} {'ident':>6} {'length':>7} "
          f"{'f0 r':>6} {'cpu/s':>6}")  # fmt: skip
    totals: dict[str, list[tuple[float, float, float, float]]] = {m: [] for m in ("real", "model", "units")}
    for name, (train, test) in data.items():
        items = [
            (torch.tensor(jamo_ids(u.text)), torch.from_numpy(log_mel(u.samples, config))) for u in train
        ]
        model = AcousticModel(VoiceConfig(), seed=13)
        train_voice(model, items, items[:2], 0, steps=args.steps)
        pace = calibrate_pace(model, items)
        spans = [aligned_index(model, ids, mel) for ids, mel in items]
        selector = Selector(build_wave_inventory(
            [(i.numpy(), u.samples, x) for (i, _), u, x in zip(items, train, spans, strict=True)], config.hop
        ))  # fmt: skip
        others = {**references, **{k: v for k, v in centroids.items() if k != name}}
        for mode in ("real", "model", "units"):
            spoken, cpu, seconds = [], 0.0, 0.0
            for u in test:
                if mode == "real":  # the held-out recordings themselves: what a perfect voice would score
                    spoken.append(u.samples)
                    seconds += len(u.samples) / config.sample_rate
                    continue
                started = time.process_time()
                ids = torch.tensor(jamo_ids(u.text))
                mel, index = model_mel(model, ids, pace)
                if mode == "units":
                    missing = model_fallback(mel, index, config.hop, lambda m: griffin_lim(m, config))
                    samples = selector.render(ids.tolist(), missing)
                else:
                    samples = griffin_lim(mel, config)
                cpu += time.process_time() - started
                seconds += len(samples) / config.sample_rate
                spoken.append(samples)
            s = score_voice(encoder, spoken, config.sample_rate, test, centroids[name], others)
            gap = s.real_similarity - s.similarity
            totals[mode].append((s.identified, gap, s.length_ratio, cpu / seconds))
            rate = cpu / seconds
            print(
                f"{name:8} {mode:6} {s.similarity:7.3f} {s.real_similarity:6.3f} {gap:6.3f} "
                f"{s.identified:6.0%} {s.length_ratio:7.2f} {s.f0_correlation:6.2f} {rate:6.2f}"
            )
    for mode, rows in totals.items():
        identified, gaps, lengths, cpus = (np.array(c) for c in zip(*rows, strict=True))
        off = np.abs(lengths - 1)
        print(f"{mode:>6}: identified {identified.mean():.0%}, mean cosine gap {gaps.mean():.3f}, "
              f"length within {off.mean():.1%} (worst {off.max():.1%}), "
              f"{cpus.mean():.2f} s CPU per s of audio")  # fmt: skip


if __name__ == "__main__":
    main()
