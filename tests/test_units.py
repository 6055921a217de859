"""Unit selection from the person's own recordings (models/units.py): plans, cuts and joins."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.units import Selector, WaveInventory, build_wave_inventory, crossfade

HOP = 4


def _recording(ids: list[int], seed: int, frames_each: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Jamo, samples (a distinct level per recording), and each frame's jamo."""
    rng = np.random.default_rng(seed)
    index = np.repeat(np.arange(len(ids)), frames_each)
    return np.array(ids), (rng.uniform(-0.5, 0.5, len(index) * HOP)).astype(np.float32), index


def test_a_sentence_said_before_is_its_own_recording() -> None:
    first, second = _recording([5, 6, 7, 8], 1), _recording([9, 6, 7, 10], 2)
    selector = Selector(build_wave_inventory([first, second], HOP))
    assert selector.plan([9, 6, 7, 10]) == [(0, 4, 4)]  # one run: the whole second recording
    said = selector.render([9, 6, 7, 10], lambda i: np.zeros(0))
    expected = second[1] / np.abs(second[1]).max() * 0.9
    np.testing.assert_allclose(said, expected, atol=2e-3)  # int16 storage, peak normalised


def test_runs_prefer_matching_neighbours_and_unheld_jamo_take_the_fallback() -> None:
    selector = Selector(build_wave_inventory([_recording([1, 2, 3], 1), _recording([4, 2, 5], 2)], HOP))
    plan = selector.plan([4, 2, 99, 3])
    assert plan[0] == (0, 3, 2)  # "4 2" said together in the second recording
    assert plan[1] == (2, -1, 1)  # 99 was never said: the model's rendering of it
    assert plan[2] == (3, 2, 1)
    asked: list[int] = []

    def model_says(i: int) -> np.ndarray:
        asked.append(i)
        return np.full(7, 0.1)

    selector.render([4, 2, 99, 3], model_says, fade=0)
    assert asked == [2]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 6), min_size=1, max_size=8), st.lists(st.integers(1, 12), min_size=1, max_size=30)
)
def test_every_target_is_covered_once_in_order_by_runs_really_said(
    target: list[int], said: list[int]
) -> None:
    selector = Selector(build_wave_inventory([_recording(said, 3)], HOP))
    plan = selector.plan(target)
    assert [i + j for i, _, k in plan for j in range(k)] == list(range(len(target)))
    for i, p, k in plan:
        if p >= 0:
            assert selector.inventory.ids[p : p + k].tolist() == target[i : i + k]


def test_a_crossfade_keeps_the_sentence_length_it_widened_the_cuts_by() -> None:
    a, b = np.ones(100, np.float32), -np.ones(100, np.float32)
    out = crossfade([a, b], 20)
    assert len(out) == 180 and out[0] > 0 > out[-1]
    # Jamo 2 ends its recording and 3 starts its own: each cut widens inwards only (2 samples), and
    # the join overlaps 2 x 2 samples, so the sentence is exactly the two jamo's own 12 + 12 samples.
    selector = Selector(build_wave_inventory([_recording([1, 2], 1), _recording([3, 4], 2)], HOP))
    whole = selector.render([2, 3], lambda i: np.zeros(0), fade=2)
    assert len(whole) == 2 * 3 * HOP


def test_an_inventory_round_trips_through_bytes() -> None:
    inventory = build_wave_inventory([_recording([1, 2, 3], 1)], HOP)
    again = WaveInventory.from_bytes(inventory.to_bytes())
    assert (again.ids == inventory.ids).all() and (again.samples == inventory.samples).all()
    assert (again.bounds == inventory.bounds).all()
