"""Messages to turns, sessions and context->reply training pairs for one persona.

- A turn merges a burst: consecutive messages of one speaker in one conversation, each within
  `burst_gap` of the previous.
- A session ends where the gap between two messages exceeds `session_gap`.
- A pair is a persona turn (the reply) with up to `context_turns` earlier turns of its session
  (the context); a persona turn that opens a session has no context and makes no pair.
- Train/validation is split by session, never by pair, deterministically from `seed`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from schemas.pairs import PAIR_SCHEMA
from tasks.datasets.options import TurnOptions as TurnOptions  # its home is the light options module

GAP_BUCKETS: tuple[tuple[str, float], ...] = (
    ("<=1m", 60),
    ("<=2m", 120),
    ("<=10m", 600),
    ("<=1h", 3600),
    ("<=1d", 86400),
    (">1d", float("inf")),
)


def build_turns(messages: pd.DataFrame, options: TurnOptions) -> pd.DataFrame:
    """Merge bursts into turns and number sessions.

    `messages` needs conversation_id, ts, message_id, speaker, text, is_persona. Returns one row a
    turn: conversation_id, session_id, turn_index (in session), speaker, is_persona, text,
    ts_start, ts_end, first_message_id, n_messages, parts (the turn's messages, an Arrow list).
    """
    df = messages.sort_values(["conversation_id", "ts", "message_id"], kind="stable").reset_index(drop=True)
    if df.empty:
        return pd.DataFrame(
            columns=[
                "conversation_id",
                "session_id",
                "turn_index",
                "speaker",
                "is_persona",
                "text",
                "ts_start",
                "ts_end",
                "first_message_id",
                "n_messages",
                "parts",
            ]
        )
    n = len(df)
    conv = df["conversation_id"].to_numpy()
    speaker = df["speaker"].fillna("").to_numpy()
    new_conv = np.ones(n, dtype=bool)
    new_conv[1:] = conv[1:] != conv[:-1]
    gap = np.array(df["ts"].diff().dt.total_seconds().fillna(np.inf), dtype=float)
    gap[new_conv] = np.inf
    new_session = gap > options.session_gap_s
    changed_speaker = np.ones(n, dtype=bool)
    changed_speaker[1:] = speaker[1:] != speaker[:-1]
    new_turn = new_session | changed_speaker | (gap > options.burst_gap_s)

    # Turn boundaries as offsets: every aggregate is a take at the first/last row of a turn, and
    # the texts are joined by an Arrow kernel over a list view of the column (no Python per turn).
    first = np.flatnonzero(new_turn)
    last = np.append(first[1:], n) - 1
    message_ids = df["message_id"].to_numpy()
    session_start = np.flatnonzero(new_session)
    session_of_row = np.cumsum(new_session) - 1
    session_id = conv[session_start] + ":" + message_ids[session_start]
    texts = pa.ListArray.from_arrays(
        pa.array(np.append(first, n), pa.int32()), pa.array(df["text"].astype("str").to_numpy(), pa.string())
    )
    turn_session = session_of_row[first]
    new_turn_session = np.ones(len(first), dtype=bool)
    new_turn_session[1:] = turn_session[1:] != turn_session[:-1]
    positions = np.arange(len(first))
    turn_index = positions - np.maximum.accumulate(np.where(new_turn_session, positions, 0))
    ts = df["ts"]
    return pd.DataFrame(
        {
            "conversation_id": conv[first],
            "session_id": session_id[turn_session],
            "turn_index": turn_index,
            "speaker": df["speaker"].to_numpy()[first],
            "is_persona": df["is_persona"].to_numpy(dtype=bool)[first],
            "text": pc.binary_join(texts, "\n").to_numpy(zero_copy_only=False),
            "ts_start": ts.iloc[first].reset_index(drop=True),
            "ts_end": ts.iloc[last].reset_index(drop=True),
            "first_message_id": message_ids[first],
            "n_messages": last - first + 1,
            "parts": pd.arrays.ArrowExtensionArray(texts),
        }
    )


def gap_distribution(messages: pd.DataFrame) -> dict[str, Any]:
    """Inter-message gaps within conversations: quantiles and bucket counts (for the report)."""
    df = messages.sort_values(["conversation_id", "ts"], kind="stable")
    same = df["conversation_id"].eq(df["conversation_id"].shift())
    gaps = df["ts"].diff().dt.total_seconds()[same].to_numpy()
    if not len(gaps):
        return {"count": 0}
    buckets: dict[str, int] = {}
    low = -np.inf
    for name, high in GAP_BUCKETS:
        buckets[name] = int(((gaps > low) & (gaps <= high)).sum())
        low = high
    q = np.quantile(gaps, [0.5, 0.9, 0.99])
    return {
        "count": len(gaps),
        "p50_s": float(q[0]),
        "p90_s": float(q[1]),
        "p99_s": float(q[2]),
        "buckets": buckets,
    }


def session_split(session_ids: pd.Series, options: TurnOptions) -> pd.Series:
    """'validation' or 'train' per session, from a seeded hash of its id (stable across runs)."""
    unique = list(dict.fromkeys(session_ids.tolist()))
    scores = np.array(
        [int(hashlib.sha256(f"{options.seed}:{s}".encode()).hexdigest()[:12], 16) / 16**12 for s in unique]
    )
    validation = scores < options.validation_fraction
    if len(unique) >= 2 and not validation.any():
        validation[int(scores.argmin())] = True  # a tiny dataset still gets a held-out session
    if len(unique) >= 2 and validation.all():
        validation[int(scores.argmax())] = False
    table = dict(zip(unique, np.where(validation, "validation", "train").tolist(), strict=True))
    return session_ids.map(table)


def build_pairs(turns: pd.DataFrame, owner_id: str, persona_id: str, options: TurnOptions) -> pa.Table:
    """Context->reply pairs for the persona's turns, with their split.

    Vectorised: a pair's context is a window of the turn table, so all contexts are one `take`
    of the turns (as structs) under a list of offsets.
    """
    if turns.empty:
        return PAIR_SCHEMA.empty_table()
    index = turns["turn_index"].to_numpy()
    replies = np.flatnonzero(turns["is_persona"].to_numpy(dtype=bool) & (index > 0))
    if not len(replies):
        return PAIR_SCHEMA.empty_table()
    lengths = np.minimum(index[replies], options.context_turns)
    offsets = np.zeros(len(replies) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    window = np.repeat(replies - lengths - offsets[:-1], lengths) + np.arange(offsets[-1])
    context_type = PAIR_SCHEMA.field("context").type
    struct = pa.StructArray.from_arrays(
        [
            pa.array(turns["speaker"].astype("str").to_numpy(), pa.string()),
            pa.array(turns["text"].astype("str").to_numpy(), pa.string()),
            pa.array(turns["is_persona"].to_numpy(dtype=bool), pa.bool_()),
        ],
        fields=list(context_type.value_type),
    )
    context = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), struct.take(pa.array(window)), type=context_type
    )
    first_ids = turns["first_message_id"].to_numpy()[replies]
    pair_ids = [hashlib.sha256(f"{owner_id}:{persona_id}:{m}".encode()).hexdigest()[:20] for m in first_ids]
    sessions = turns["session_id"].iloc[replies]
    n = len(replies)
    columns = {
        "pair_id": pa.array(pair_ids, pa.string()),
        "owner_id": pa.array([owner_id] * n, pa.string()),
        "persona_id": pa.array([persona_id] * n, pa.string()),
        "conversation_id": pa.array(turns["conversation_id"].to_numpy()[replies], pa.string()),
        "session_id": pa.array(sessions.to_numpy(), pa.string()),
        "split": pa.array(session_split(turns["session_id"], options).to_numpy()[replies], pa.string()),
        "context": context,
        "reply": pa.array(turns["text"].astype("str").to_numpy()[replies], pa.string()),
        "reply_speaker": pa.array(turns["speaker"].astype("str").to_numpy()[replies], pa.string()),
        "reply_ts": pa.array(turns["ts_start"].iloc[replies]).cast(PAIR_SCHEMA.field("reply_ts").type),
        "reply_message_id": pa.array(first_ids, pa.string()),
        "reply_parts": pa.array(turns["parts"]).take(pa.array(replies)),
    }
    return pa.Table.from_arrays(list(columns.values()), schema=PAIR_SCHEMA)
