"""Bursts, sessions, pairs and the split by session."""

from __future__ import annotations

import pandas as pd

from tasks.datasets.turns import TurnOptions, build_pairs, build_turns, gap_distribution, session_split
from tests.messages import frame


def _persona(df: pd.DataFrame, name: str = "엄마") -> pd.DataFrame:
    df["is_persona"] = df["speaker"] == name
    return df


def test_bursts_merge_within_the_gap_and_sessions_split_on_long_gaps() -> None:
    df = _persona(
        frame(
            [
                {"text": "a1", "speaker": "나", "minute": 0},
                {"text": "a2", "speaker": "나", "minute": 2},  # within 2 min: same turn
                {"text": "m1", "speaker": "엄마", "minute": 3},
                {"text": "m2", "speaker": "엄마", "minute": 6},  # 3 min later: a new turn
                {"text": "b1", "speaker": "나", "minute": 6 + 61},  # 61 min later: a new session
                {"text": "m3", "speaker": "엄마", "minute": 68},
            ]
        )
    )
    turns = build_turns(df, TurnOptions())
    assert turns["text"].tolist() == ["a1\na2", "m1", "m2", "b1", "m3"]
    assert turns["turn_index"].tolist() == [0, 1, 2, 0, 1]
    assert turns["session_id"].nunique() == 2
    assert turns["n_messages"].tolist() == [2, 1, 1, 1, 1]


def test_conversations_never_share_a_turn_or_session() -> None:
    df = _persona(
        frame(
            [
                {"text": "x", "speaker": "엄마", "conversation_id": "c1"},
                {"text": "y", "speaker": "엄마", "conversation_id": "c2"},
            ]
        )
    )
    turns = build_turns(df, TurnOptions())
    assert len(turns) == 2 and turns["session_id"].nunique() == 2


def test_pairs_take_bounded_context_from_their_session_only() -> None:
    rows = [{"text": f"t{i}", "speaker": "나" if i % 2 == 0 else "엄마", "minute": i * 3} for i in range(10)]
    rows.insert(0, {"text": "opening", "speaker": "엄마", "minute": -200})  # alone in its session
    df = _persona(frame(rows))
    options = TurnOptions(context_turns=3)
    pairs = build_pairs(build_turns(df, options), "o", "mom", options).to_pylist()
    assert [p["reply"] for p in pairs] == ["t1", "t3", "t5", "t7", "t9"]  # "opening" has no context
    assert [[c["text"] for c in p["context"]] for p in pairs][:3] == [
        ["t0"],
        ["t0", "t1", "t2"],
        ["t2", "t3", "t4"],
    ]
    assert all(p["reply_speaker"] == "엄마" for p in pairs)
    assert pairs[1]["context"][1] == {"speaker": "엄마", "text": "t1", "is_persona": True}


def test_split_is_by_session_and_deterministic() -> None:
    sessions = pd.Series([f"s{i}" for i in range(200) for _ in range(3)])
    first = session_split(sessions, TurnOptions(seed=1))
    again = session_split(sessions, TurnOptions(seed=1))
    other = session_split(sessions, TurnOptions(seed=2))
    assert first.tolist() == again.tolist()
    assert first.tolist() != other.tolist()
    assert (pd.DataFrame({"s": sessions, "x": first}).groupby("s")["x"].nunique() == 1).all()
    assert 5 <= (first == "validation").sum() / 3 <= 40  # ~10 % of 200 sessions


def test_a_tiny_dataset_still_holds_out_one_session() -> None:
    split = session_split(pd.Series(["a", "b"]), TurnOptions(validation_fraction=0.0001))
    assert sorted(split) == ["train", "validation"]


def test_gap_distribution_buckets() -> None:
    df = frame([{"text": "x", "minute": m} for m in (0, 1, 3, 100, 2000)])
    gaps = gap_distribution(df)
    assert gaps["count"] == 4
    # gaps of 1, 2, 97 and 1,900 minutes
    assert gaps["buckets"] == {"<=1m": 1, "<=2m": 1, "<=10m": 0, "<=1h": 0, "<=1d": 1, ">1d": 1}
    assert gaps["p50_s"] == (120 + 5820) / 2
