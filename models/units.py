"""Unit selection from the person's own recordings: their sounds, cut and joined, read a new sentence.

A model that predicts log-mel frames, rendered by Griffin-Lim, averages its speaker away: on four
test voices its sentences sat at speaker cosine 0.057 below the person's own recordings, and even
real frames through Griffin-Lim lose some of it. Their recordings keep it. So a voice carries an
inventory: each training recording's samples and jamo, each jamo's span found by the trained
aligner (monotonic search, models/align.py; a frame is `hop` samples). A sentence is read by greedy
longest match: at each position the longest run of its jamo that one recording says contiguously,
preferring the occurrence whose neighbours also match; the run's real samples are cut (a little
wider) and joined to the next by an equal-power crossfade over the widening. A jamo no recording
holds takes the acoustic model's rendering of it. `bench/voice.py` measures it (gap 0.004).
No I/O here.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Longest run of jamo looked up at once (longer runs are found as chains of these).
MAX_RUN = 24
#: Samples a cut is widened by each side: the crossfade is twice this (10 ms at 22.05 kHz).
FADE = 110


@dataclass(frozen=True)
class WaveInventory:
    """The recordings themselves, and where each of their jamo lies in them."""

    ids: np.ndarray  # (n,) int32, all recordings' jamo one after another
    utterance: np.ndarray  # (n,) int32, which recording each jamo is from
    start: np.ndarray  # (n,) int64, first sample of each jamo in `samples`
    stop: np.ndarray  # (n,) int64
    bounds: np.ndarray  # (recordings, 2) int64, each recording's samples in `samples`
    samples: np.ndarray  # int16, every recording one after another

    def to_bytes(self) -> bytes:
        """The inventory as one .npz."""
        out = io.BytesIO()
        np.savez(out, ids=self.ids, utterance=self.utterance, start=self.start, stop=self.stop,
                 bounds=self.bounds, samples=self.samples)  # fmt: skip
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> WaveInventory:
        """Read `to_bytes`' output."""
        with np.load(io.BytesIO(data)) as npz:
            return cls(npz["ids"], npz["utterance"], npz["start"], npz["stop"], npz["bounds"], npz["samples"])


def build_wave_inventory(
    recordings: list[tuple[np.ndarray, np.ndarray, np.ndarray]], hop: int
) -> WaveInventory:
    """From (jamo ids, float samples, frame -> jamo index) of each recording.

    Each recording's loudness is brought to the median's, so cuts from a quiet and a loud recording
    join without a jump.
    """
    levels = [float(np.sqrt(np.mean(s**2))) or 1.0 for _, s, _ in recordings]
    target = float(np.median(levels)) if levels else 1.0
    ids, utterance, start, stop, bounds, samples = [], [], [], [], [], []
    offset = 0
    for k, ((jamo, wave, index), level) in enumerate(zip(recordings, levels, strict=True)):
        counts = np.bincount(index, minlength=len(jamo))[: len(jamo)]
        ends = np.minimum(np.cumsum(counts) * hop, len(wave))
        ids.append(np.asarray(jamo, dtype=np.int32))
        utterance.append(np.full(len(jamo), k, dtype=np.int32))
        start.append(offset + np.concatenate([[0], ends[:-1]]))
        stop.append(offset + ends)
        bounds.append((offset, offset + len(wave)))
        samples.append(np.clip(wave * (target / level) * 32767, -32768, 32767).astype(np.int16))
        offset += len(wave)
    if not recordings:
        empty = np.zeros(0, dtype=np.int64)
        return WaveInventory(empty.astype(np.int32), empty.astype(np.int32), empty, empty,
                             np.zeros((0, 2), np.int64), np.zeros(0, np.int16))  # fmt: skip
    return WaveInventory(
        np.concatenate(ids), np.concatenate(utterance), np.concatenate(start).astype(np.int64),
        np.concatenate(stop).astype(np.int64), np.array(bounds, dtype=np.int64), np.concatenate(samples),
    )  # fmt: skip


class Selector:
    """Finds runs of jamo in an inventory (an index of every run up to MAX_RUN jamo long)."""

    def __init__(self, inventory: WaveInventory) -> None:
        """Index the inventory's runs (runs never cross two recordings)."""
        self.inventory = inventory
        self.runs: dict[tuple[int, ...], list[int]] = defaultdict(list)
        ids, utt = inventory.ids.tolist(), inventory.utterance.tolist()
        for i in range(len(ids)):
            for k in range(1, MAX_RUN + 1):
                if i + k > len(ids) or utt[i + k - 1] != utt[i]:
                    break
                self.runs[tuple(ids[i : i + k])].append(i)

    def plan(self, target: list[int]) -> list[tuple[int, int, int]]:
        """(target position, inventory position or -1, run length) covering `target` left to right."""
        out, i = [], 0
        while i < len(target):
            for k in range(min(MAX_RUN, len(target) - i), 0, -1):
                places = self.runs.get(tuple(target[i : i + k]))
                if places:
                    scores = [self._context(target, i, p, k) for p in places]
                    out.append((i, places[int(np.argmax(scores))], k))
                    i += k
                    break
            else:
                out.append((i, -1, 1))
                i += 1
        return out

    def _context(self, target: list[int], i: int, p: int, k: int) -> int:
        """How many neighbours of the run at inventory position `p` also match the target's."""
        ids, utt, end = self.inventory.ids, self.inventory.utterance, p + k
        left = i > 0 and p > 0 and utt[p - 1] == utt[p] and ids[p - 1] == target[i - 1]
        right = i + k < len(target) and end < len(ids) and utt[end] == utt[p] and ids[end] == target[i + k]
        return int(left) + int(right)

    def render(
        self, target: list[int], fallback: Callable[[int], np.ndarray], fade: int = FADE
    ) -> np.ndarray:
        """Samples of `target`: the selected runs cut from the recordings, crossfaded.

        Each run is cut `fade` samples wider on both sides (within its own recording), and
        neighbours overlap there with equal-power fades, so joins do not click. A jamo no
        recording holds is `fallback(position)`.
        """
        inv = self.inventory
        pieces: list[np.ndarray] = []
        for i, p, k in self.plan(target):
            if p < 0:
                pieces.append(np.asarray(fallback(i), dtype=np.float32))
                continue
            lo, hi = inv.bounds[inv.utterance[p]]
            a, b = max(lo, inv.start[p] - fade), min(hi, inv.stop[p + k - 1] + fade)
            pieces.append(inv.samples[a:b].astype(np.float32) / 32767)
        return crossfade([p for p in pieces if len(p)], 2 * fade)


def crossfade(pieces: list[np.ndarray], width: int) -> np.ndarray:
    """Pieces joined end to start, each join an equal-power crossfade over up to `width` samples."""
    if not pieces:
        return np.zeros(1, dtype=np.float32)
    out = pieces[0]
    for piece in pieces[1:]:
        w = min(width, len(out), len(piece))
        ramp = np.sin(np.linspace(0, np.pi / 2, w)) ** 2
        blended = out[len(out) - w :] * (1 - ramp) + piece[:w] * ramp
        out = np.concatenate([out[: len(out) - w], blended, piece[w:]])
    peak = float(np.abs(out).max()) or 1.0
    return (out / peak * 0.9).astype(np.float32)


def model_fallback(
    mel: np.ndarray, frame_index: np.ndarray, hop: int, vocode: Callable[[np.ndarray], np.ndarray]
) -> Callable[[int], np.ndarray]:
    """Jamo i's samples cut from the model's rendering of the whole sentence (vocoded once, if needed)."""
    rendered: list[np.ndarray] = []

    def piece(i: int) -> np.ndarray:
        if not rendered:
            rendered.append(vocode(mel))
        frames = np.flatnonzero(frame_index == i)
        if not len(frames):
            return np.zeros(0, dtype=np.float32)
        return rendered[0][frames[0] * hop : (frames[-1] + 1) * hop]

    return piece
