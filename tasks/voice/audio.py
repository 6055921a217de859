"""Voice preprocessing with pydub/ffmpeg: decode -> mono -> resample -> split -> measure -> normalise.

Loudness: RMS normalisation to `target_dbfs` (default -20 dBFS) with a peak ceiling (-1 dBFS),
not LUFS: LUFS needs a K-weighting filter that nothing in our stack ships, and for speech alone
the two differ by a dB or two; peak normalisation was rejected because one cough would set the
level of a whole utterance. Quality figures are measured before normalisation (so clipping and
level describe the recording as it came): duration, RMS and peak dBFS, clipping ratio (samples
within 0.1 % of full scale), and an SNR estimate (utterance RMS over the RMS of the recording's
silences). Every segment gets a named drop reason or none.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np
from pydub import AudioSegment
from pydub.exceptions import CouldntDecodeError
from pydub.silence import detect_nonsilent


class AudioError(Exception):
    """Audio that cannot be decoded; the message is ffmpeg's complaint in one line."""


@dataclass(frozen=True)
class AudioOptions:
    """Preprocessing parameters (recorded with every voice dataset)."""

    sample_rate: int = 22_050
    target_dbfs: float = -20.0
    peak_ceiling_dbfs: float = -1.0
    min_silence_ms: int = 300
    silence_below_db: float = 16.0  # silence: quieter than the recording's level minus this
    keep_silence_ms: int = 100
    min_s: float = 1.0
    max_s: float = 15.0
    min_rms_dbfs: float = -45.0
    max_clipping: float = 0.01
    min_snr_db: float = 10.0


@dataclass
class Segment:
    """One utterance: where it is, how it measures, the normalised audio (None when dropped)."""

    start_s: float
    end_s: float
    rms_dbfs: float
    peak_dbfs: float
    clipping_ratio: float
    snr_db: float | None
    drop_reason: str | None
    audio: AudioSegment | None

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.end_s - self.start_s


def _one_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if re.search(r"(?i)invalid|error|could not|no such|not found|unknown", ln)]
    return (useful or lines or ["unknown decoding error"])[-1][:200]


def decode(data: bytes, name: str) -> AudioSegment:
    """Any container ffmpeg reads (m4a/AAC, mp3, wav, ogg/opus, webm); AudioError when it cannot."""
    if not data:
        raise AudioError(f"{name}: empty file")
    try:
        return AudioSegment.from_file(io.BytesIO(data))
    except CouldntDecodeError as exc:
        raise AudioError(f"{name}: undecodable audio ({_one_line(str(exc))})") from None
    except (IndexError, OSError) as exc:  # pydub's own parsing of odd ffmpeg output
        raise AudioError(f"{name}: undecodable audio ({exc})") from None


def clipping_ratio(audio: AudioSegment) -> float:
    """Share of samples within 0.1 % of full scale."""
    dtype = {1: np.int8, 2: np.int16, 4: np.int32}[audio.sample_width]
    samples = np.frombuffer(audio.raw_data, dtype=dtype).astype(np.int64)
    if not len(samples):
        return 0.0
    limit = 0.999 * (1 << (8 * audio.sample_width - 1))
    return float(np.count_nonzero(np.abs(samples) >= limit) / len(samples))


def _dbfs(audio: AudioSegment) -> float:
    value = float(audio.dBFS)
    return value if math.isfinite(value) else -120.0


def preprocess(audio: AudioSegment, options: AudioOptions | None = None) -> list[Segment]:
    """Cut a recording into 1-15 s utterances with quality figures and drop reasons."""
    options = options or AudioOptions()
    audio = audio.set_channels(1).set_frame_rate(options.sample_rate)
    level = _dbfs(audio)
    ranges = detect_nonsilent(
        audio,
        min_silence_len=options.min_silence_ms,
        silence_thresh=level - options.silence_below_db,
        seek_step=10,
    )
    noise = _noise_dbfs(audio, ranges)
    segments = []
    for start, end in _bounded(ranges, len(audio), options):
        piece = audio[start:end]
        rms, peak = _dbfs(piece), float(piece.max_dBFS) if piece.max else -120.0
        clip = clipping_ratio(piece)
        snr = rms - noise if noise is not None else None
        reason = None
        if (end - start) / 1000 < options.min_s:
            reason = "too_short"
        elif rms < options.min_rms_dbfs:
            reason = "too_quiet"
        elif clip > options.max_clipping:
            reason = "clipped"
        elif snr is not None and snr < options.min_snr_db:
            reason = "low_snr"
        out = None
        if reason is None:
            gain = min(options.target_dbfs - rms, options.peak_ceiling_dbfs - peak)
            out = piece.apply_gain(gain)
        segments.append(Segment(start / 1000, end / 1000, rms, peak, clip, snr, reason, out))
    return segments


def _bounded(ranges: list[list[int]], total_ms: int, options: AudioOptions) -> list[tuple[int, int]]:
    """Pad each voiced range with a little silence; split ranges over `max_s` into equal parts."""
    out = []
    limit = int(options.max_s * 1000)
    for start, end in ranges:
        start = max(0, start - options.keep_silence_ms)
        end = min(total_ms, end + options.keep_silence_ms)
        parts = max(1, math.ceil((end - start) / limit))
        step = (end - start) / parts
        out += [(int(start + i * step), int(start + (i + 1) * step)) for i in range(parts)]
    return out


def _noise_dbfs(audio: AudioSegment, ranges: list[list[int]]) -> float | None:
    """RMS level of everything outside the voiced ranges (None without enough silence)."""
    gaps, cursor = [], 0
    for start, end in ranges:
        if start - cursor >= 100:
            gaps.append(audio[cursor:start])
        cursor = end
    if len(audio) - cursor >= 100:
        gaps.append(audio[cursor:])
    if not gaps:
        return None
    silence = sum(gaps[1:], gaps[0])
    return _dbfs(silence)


def wav_bytes(audio: AudioSegment) -> bytes:
    """16-bit PCM WAV of a segment."""
    buffer = io.BytesIO()
    audio.set_sample_width(2).export(buffer, format="wav")  # returns our own buffer: keep it open
    return buffer.getvalue()
