"""Monotonic alignment of jamo to frames (Glow-TTS' search, in numpy) and durations <-> frame index.

Speech has no frame-level labels: which frames belong to which jamo is found by dynamic
programming over a cost matrix (how unlike each frame is to each jamo's predicted sound), under
the rules that reading goes forward, never skips a jamo, and gives each at least one frame.
The durations found this way train a duration predictor, which places frames at inference.
"""

from __future__ import annotations

import numpy as np


def monotonic_alignment(cost: np.ndarray) -> np.ndarray:
    """Frame -> jamo index (t,) of the cheapest monotonic path through `cost` (n jamo x t frames).

    Every jamo gets at least one frame and the path runs from (0, 0) to (n - 1, t - 1); with
    fewer frames than jamo no such path exists, and the frames are shared out evenly instead.
    """
    n, t = cost.shape
    if t < n:
        shared: np.ndarray = uniform_index(n, t)[0]
        return shared
    total = np.full((n, t), np.inf)
    total[0, 0] = cost[0, 0]
    for j in range(1, t):
        stay = total[:, j - 1]
        advance = np.concatenate(([np.inf], total[:-1, j - 1]))
        total[:, j] = cost[:, j] + np.minimum(stay, advance)
    path = np.empty(t, dtype=np.int64)
    i = n - 1
    for j in range(t - 1, -1, -1):
        path[j] = i
        # Move to the previous jamo when that was the cheaper way in, and always once the
        # remaining frames are only enough for one frame per remaining jamo.
        if i > 0 and (i == j or total[i - 1, j - 1] < total[i, j - 1]):
            i -= 1
    return path


def durations(index: np.ndarray, n: int) -> np.ndarray:
    """Frames per jamo (n,) of a frame -> jamo index."""
    return np.bincount(index, minlength=n)[:n]


def index_from_durations(frames_per_jamo: np.ndarray) -> np.ndarray:
    """Frame -> jamo index (1, t) int64 when jamo i lasts `frames_per_jamo[i]` frames."""
    counts = np.maximum(np.asarray(frames_per_jamo, dtype=np.int64), 1)
    return np.repeat(np.arange(len(counts)), counts).reshape(1, -1).astype(np.int64)


def uniform_index(n_tokens: int, n_frames: int) -> np.ndarray:
    """Frame -> jamo index when every jamo gets the same share of frames: (1, n_frames) int64."""
    return (np.arange(n_frames) * n_tokens // max(n_frames, 1)).reshape(1, -1).astype(np.int64)
