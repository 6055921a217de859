"""Hypothesis strategies of arbitrary JSON values, for the typed-vs-plain JSON reader tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(strings: st.SearchStrategy[str]) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(what a writer of strict JSON writes, that or NaN/Infinity, which Python's json reads and writes)."""
    finite = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | strings,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings, inner, max_size=3),
        max_leaves=6,
    )
    return finite, finite | st.sampled_from([float("nan"), float("inf")])
