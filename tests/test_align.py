"""Monotonic alignment search and durations: exact on constructed cost matrices, well-formed always."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.align import durations, index_from_durations, monotonic_alignment, uniform_index
from models.voice import (
    AcousticModel,
    VoiceConfig,
    export_voice_onnx,
    frames_from_log_durations,
    voice_parity,
)


def _cost_for(path: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Noise everywhere, clearly cheaper along `path`."""
    cost = rng.uniform(1.0, 2.0, size=(n, len(path)))
    cost[path, np.arange(len(path))] = rng.uniform(0.0, 0.2, size=len(path))
    return cost


@pytest.mark.parametrize("seed", range(5))
def test_the_search_recovers_a_planted_path(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    truth = index_from_durations(rng.integers(1, 12, size=n))[0]
    assert np.array_equal(monotonic_alignment(_cost_for(truth, n, rng)), truth)


def test_every_path_is_monotonic_complete_and_gives_each_jamo_a_frame() -> None:
    rng = np.random.default_rng(9)
    for _ in range(50):
        n = int(rng.integers(1, 20))
        t = int(rng.integers(n, 80))
        path = monotonic_alignment(rng.uniform(size=(n, t)))
        assert path[0] == 0 and path[-1] == n - 1
        assert set(np.diff(path)) <= {0, 1}
        assert durations(path, n).min() >= 1 and durations(path, n).sum() == t


def test_fewer_frames_than_jamo_share_them_out() -> None:
    path = monotonic_alignment(np.zeros((10, 4)))
    assert np.array_equal(path, uniform_index(10, 4)[0])


def test_durations_round_trip_and_prediction_rounds_to_whole_frames() -> None:
    counts = np.array([3, 1, 5, 2])
    assert np.array_equal(durations(index_from_durations(counts)[0], 4), counts)
    assert list(frames_from_log_durations(np.log1p([0.2, 2.6, 7.0]))) == [1, 3, 7]
    assert list(frames_from_log_durations(np.log1p([2.0, 4.0]), pace=1.5)) == [3, 6]


@pytest.mark.slow
def test_both_voice_graphs_match_torch_on_uneven_spans() -> None:
    model = AcousticModel(VoiceConfig(channels=32), seed=1).eval()
    assert voice_parity(model, export_voice_onnx(model)) <= 1e-4
    ids = torch.randint(2, 40, (1, 6))
    with torch.no_grad():
        assert model.log_durations(ids, torch.tensor([0])).shape == (1, 6)
