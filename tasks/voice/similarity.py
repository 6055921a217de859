"""Does the persona's voice sound like them? Measured on held-out recordings, for cards, bench and gate.

For every held-out utterance (recorded by the persona, never trained on) the voice reads its
transcript; the synthesised sentence is compared with the real one and with the persona's real
voice: its speaker cosine to the centroid of the persona's training recordings (SECS, as the field
measures it), whether it is nearer that centroid than to every other voice known (the owner's other
personas, and fixed reference voices), the log-mel distance to the real recording after dynamic
time warping, its length against the real one, and the correlation of their pitch contours along
the warping path. The real held-out sentences' own cosine to the centroid is the ceiling.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.speaker import SpeakerEncoder, cosine
from models.voice import MelConfig, log_mel

#: Reference voices (not anyone's): embeddings in `reference_voices.json`, made by bench/reference_voices.py.
REFERENCE_VOICES = Path(__file__).with_name("reference_voices.json")


@dataclass(frozen=True)
class Utterance:
    """A recording and what it says."""

    text: str
    samples: np.ndarray
    sample_rate: int


@dataclass(frozen=True)
class VoiceScore:
    """How much a voice sounds like its persona, on held-out sentences (means over them)."""

    utterances: int
    #: Speaker cosine of the synthesised sentences to the persona's real centroid.
    similarity: float
    #: The same for the real held-out sentences: what a perfect voice would reach.
    real_similarity: float
    #: Share of synthesised sentences nearer the persona's centroid than to any other voice known.
    identified: float
    #: Log-mel L1 to the real recording along the cheapest warping path.
    mel_distance: float
    #: Synthesised length / real length.
    length_ratio: float
    #: Correlation of log-F0 with the real recording's along the warping path (voiced frames).
    f0_correlation: float
    #: Voices it was told apart from.
    competitors: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, rounded."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def encoder_weights(configured: str | None = None) -> Path | None:
    """The speaker encoder's weights: the configured file, else the installed `resemblyzer` wheel's."""
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    return found if found.exists() else None


@functools.cache
def load_encoder(path: str) -> SpeakerEncoder:
    """The speaker encoder from a Resemblyzer-format checkpoint (cached per path)."""
    return SpeakerEncoder(torch.load(path, map_location="cpu", weights_only=False))


def reference_voices() -> dict[str, np.ndarray]:
    """Fixed voices that are nobody's persona: a synthesised voice must be nearer its own than these."""
    if not REFERENCE_VOICES.exists():
        return {}
    return {k: np.asarray(v, dtype=np.float32) for k, v in json.loads(REFERENCE_VOICES.read_text()).items()}


def centroid(encoder: SpeakerEncoder, utterances: list[Utterance]) -> np.ndarray:
    """The normed mean embedding of some recordings."""
    mean = np.mean([encoder.embed(u.samples, u.sample_rate) for u in utterances], axis=0)
    out: np.ndarray = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def score_voice(
    encoder: SpeakerEncoder,
    synthesised: list[np.ndarray],
    sample_rate: int,
    held_out: list[Utterance],
    persona_centroid: np.ndarray,
    others: dict[str, np.ndarray],
) -> VoiceScore:
    """Compare each synthesised sentence with its real recording, the persona and the other voices."""
    mel_config = MelConfig(sample_rate=sample_rate)
    sims, real_sims, hits, distances, ratios, correlations = [], [], [], [], [], []
    for fake, real in zip(synthesised, held_out, strict=True):
        embedding = encoder.embed(fake, sample_rate)
        sims.append(cosine(embedding, persona_centroid))
        real_sims.append(cosine(encoder.embed(real.samples, real.sample_rate), persona_centroid))
        hits.append(all(sims[-1] > cosine(embedding, other) for other in others.values()))
        real_at_rate = _resampled(real.samples, real.sample_rate, sample_rate)
        a, b = log_mel(fake, mel_config), log_mel(real_at_rate, mel_config)
        path, distance = dtw(a, b)
        distances.append(distance)
        ratios.append(len(fake) / max(len(real_at_rate), 1))
        correlations.append(_f0_correlation(fake, real_at_rate, sample_rate, mel_config.hop, path))
    valid = [c for c in correlations if np.isfinite(c)]
    return VoiceScore(
        utterances=len(held_out),
        similarity=float(np.mean(sims)),
        real_similarity=float(np.mean(real_sims)),
        identified=float(np.mean(hits)),
        mel_distance=float(np.mean(distances)),
        length_ratio=float(np.mean(ratios)),
        f0_correlation=float(np.mean(valid)) if valid else float("nan"),
        competitors=len(others),
    )


def dtw(a: np.ndarray, b: np.ndarray) -> tuple[list[tuple[int, int]], float]:
    """The cheapest monotonic warping path between two frame sequences, and its mean L1 per step."""
    cost = np.abs(a[:, None, :] - b[None, :, :]).mean(-1)
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    total[0, 0] = 0.0
    for i in range(1, n + 1):  # one row at a time: the column recurrence is a running minimum
        diagonal_or_up = np.minimum(total[i - 1, :-1], total[i - 1, 1:]) + cost[i - 1]
        row = total[i]
        for j in range(1, m + 1):
            row[j] = min(diagonal_or_up[j - 1], row[j - 1] + cost[i - 1, j - 1])
    path, i, j = [], n, m
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        options = (total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
        k = int(np.argmin(options))
        i, j = (i - 1, j - 1) if k == 0 else (i - 1, j) if k == 1 else (i, j - 1)
    path.reverse()
    return path, float(sum(cost[p] for p in path) / max(len(path), 1))


def f0(samples: np.ndarray, sample_rate: int, hop: int, low: float = 60.0, high: float = 500.0) -> np.ndarray:
    """Per-frame fundamental frequency (Hz; 0 where unvoiced), by normalised autocorrelation."""
    window = int(sample_rate * 0.04)
    lags = np.arange(int(sample_rate / high), int(sample_rate / low) + 1)
    out = np.zeros(max(1, 1 + (len(samples) - window) // hop))
    for k in range(len(out)):
        frame = samples[k * hop : k * hop + window]
        if len(frame) < window or float(np.sqrt(np.mean(frame**2))) < 1e-3:
            continue
        frame = frame - frame.mean()
        spectrum = np.fft.rfft(frame, 2 * window)
        corr = np.fft.irfft(spectrum * np.conj(spectrum))[: lags[-1] + 1]
        corr = corr / max(float(corr[0]), 1e-12)
        best = lags[int(np.argmax(corr[lags]))]
        if corr[best] > 0.5:
            out[k] = sample_rate / best
    return out


def _f0_correlation(
    fake: np.ndarray, real: np.ndarray, sample_rate: int, hop: int, path: list[tuple[int, int]]
) -> float:
    a, b = f0(fake, sample_rate, hop), f0(real, sample_rate, hop)
    pairs = [(a[i], b[j]) for i, j in path if i < len(a) and j < len(b) and a[i] > 0 and b[j] > 0]
    if len(pairs) < 3:
        return float("nan")
    x, y = np.log(np.array(pairs)).T
    if x.std() < 1e-6 or y.std() < 1e-6:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _resampled(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return samples.astype(np.float32)
    from scipy.signal import resample_poly

    divisor = np.gcd(rate, target)
    out: np.ndarray = resample_poly(samples, target // divisor, rate // divisor).astype(np.float32)
    return out


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float samples and rate of a 16-bit PCM WAV."""
    with wave.open(io.BytesIO(data)) as reader:
        rate, channels = reader.getframerate(), reader.getnchannels()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16).astype(np.float32)
    mono: np.ndarray = pcm.reshape(-1, channels).mean(1) / 32768
    return mono, rate
