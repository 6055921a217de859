"""How much two recordings sound like the same person: a pretrained speaker encoder (d-vectors).

The encoder is Resemblyzer's (GE2E-trained LSTM over 40-band mel frames, Apache-2.0; its weights
ship in the `resemblyzer` wheel as `pretrained.pt`), re-implemented here with its exact front end
(16 kHz, 25 ms Hann windows every 10 ms, Slaney mel filters, power spectrum) so that neither
librosa nor webrtcvad is needed: long silences are trimmed by energy instead of webrtcvad's VAD.
An utterance's embedding is the L2-normed mean of its 1.6 s partial windows; the cosine of two
embeddings is the field's speaker similarity (SECS). No I/O here: the caller gives the weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.signal import resample_poly
from torch import nn

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
_TARGET_DBFS = -30.0
_VAD_WINDOW = 480  # 30 ms
_SILENCE_DB = 40.0  # a window this far below the loudest one is silence


def slaney_filters(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) mel filters on the Slaney scale with Slaney area normalisation."""
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0

    def to_mel(hz: np.ndarray) -> np.ndarray:
        return np.where(
            hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, hz / f_sp
        )

    def to_hz(mel: np.ndarray) -> np.ndarray:
        return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)

    edges = to_hz(np.linspace(to_mel(np.array(0.0)), to_mel(np.array(sr / 2)), n_mels + 2))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


_FILTERS = torch.from_numpy(slaney_filters())
_WINDOW = torch.hann_window(N_FFT)


def preprocess(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float samples -> 16 kHz, quiet ones raised to -30 dBFS, long silences trimmed."""
    wav = np.asarray(samples, dtype=np.float64)
    if sample_rate != SAMPLE_RATE:
        divisor = np.gcd(int(sample_rate), SAMPLE_RATE)
        wav = resample_poly(wav, SAMPLE_RATE // divisor, int(sample_rate) // divisor)
    rms = float(np.sqrt(np.mean(wav**2))) if len(wav) else 0.0
    if rms > 0:
        gain_db = _TARGET_DBFS - 20 * np.log10(rms)
        wav = wav * 10 ** (max(gain_db, 0.0) / 20)
    return _trim_silences(wav).astype(np.float32)


def _trim_silences(wav: np.ndarray) -> np.ndarray:
    """Drop runs of silent 30 ms windows longer than 180 ms (Resemblyzer's VAD shape, by energy)."""
    n = len(wav) // _VAD_WINDOW
    if n < 2:
        return wav
    windows = wav[: n * _VAD_WINDOW].reshape(n, _VAD_WINDOW)
    level = 10 * np.log10(np.mean(windows**2, axis=1) + 1e-12)
    voiced = level > level.max() - _SILENCE_DB
    smooth = _centred(voiced.astype(float), np.ones(8) / 8) >= 0.5
    keep = _centred(smooth.astype(float), np.ones(7)) > 0  # dilate by 3 windows a side
    return windows[keep].reshape(-1) if keep.any() else wav


def _centred(values: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """A centred moving sum, as long as `values` (np.convolve's "same" is as long as the longer one)."""
    full = np.convolve(values, kernel)
    start = (len(kernel) - 1) // 2
    out: np.ndarray = full[start : start + len(values)]
    return out


def mel_frames(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power frames of a preprocessed 16 kHz waveform (not logarithmic)."""
    spec = torch.stft(
        torch.from_numpy(np.asarray(wav, dtype=np.float32)),
        N_FFT,
        HOP,
        window=_WINDOW,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return (_FILTERS @ spec.abs() ** 2).T.numpy()


class SpeakerEncoder(nn.Module):
    """Three LSTM layers over mel frames, a linear layer and ReLU: a 256-d unit-length embedding."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        """Build the network; `state` is Resemblyzer's checkpoint (or its `model_state`)."""
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)
        if state is not None:
            weights = state.get("model_state", state)
            self.load_state_dict({k: v for k, v in weights.items() if k.split(".")[0] in ("lstm", "linear")})
        self.eval()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """(batch, frames, 40) -> (batch, 256) unit vectors."""
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        out: torch.Tensor = raw / torch.norm(raw, dim=1, keepdim=True).clamp(min=1e-12)
        return out

    def embed(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """One utterance's embedding: the normed mean of its 1.6 s windows (1.3 a second)."""
        wav = preprocess(samples, sample_rate)
        mels = mel_frames(wav)
        slices = partial_slices(len(wav))
        need = slices[-1].stop
        if need > len(mels):
            mels = np.pad(mels, ((0, need - len(mels)), (0, 0)))
        batch = torch.from_numpy(np.stack([mels[s] for s in slices]))
        with torch.no_grad():
            partial = self(batch).numpy()
        mean = partial.mean(0)
        out: np.ndarray = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return out


def partial_slices(n_samples: int, rate: float = 1.3, min_coverage: float = 0.75) -> list[slice]:
    """Frame ranges of the 1.6 s windows covering an utterance (the last dropped if mostly padding)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((SAMPLE_RATE / rate) / HOP))
    slices = [
        slice(i, i + PARTIAL_FRAMES) for i in range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)
    ]
    coverage = (n_samples - slices[-1].start * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and len(slices) > 1:
        slices = slices[:-1]
    return slices


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings."""
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
