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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from schemas.pairs import PAIR_SCHEMA


@dataclass(frozen=True)
class TurnOptions:
    """Parameters of turn building (recorded in the dataset manifest)."""

    burst_gap_s: int = 120
    session_gap_s: int = 3600
    context_turns: int = 6
    validation_fraction: float = 0.1
    seed: int = 13


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
    ts_start, ts_end, first_message_id, n_messages.
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
            ]
        )
    new_conv = df["conversation_id"].ne(df["conversation_id"].shift())
    gap = np.array(df["ts"].diff().dt.total_seconds().fillna(np.inf), dtype=float)
    gap[new_conv.to_numpy()] = np.inf
    new_session = gap > options.session_gap_s
    new_turn = new_session | df["speaker"].ne(df["speaker"].shift()).to_numpy() | (gap > options.burst_gap_s)
    df["session_no"] = np.cumsum(new_session)
    df["turn_no"] = np.cumsum(new_turn)
    session_first = df.groupby("session_no", sort=False)["message_id"].transform("first")
    df["session_id"] = df["conversation_id"] + ":" + session_first
    grouped = df.groupby("turn_no", sort=False)
    turns = grouped.agg(
        conversation_id=("conversation_id", "first"),
        session_id=("session_id", "first"),
        speaker=("speaker", "first"),
        is_persona=("is_persona", "first"),
        text=("text", "\n".join),
        ts_start=("ts", "first"),
        ts_end=("ts", "last"),
        first_message_id=("message_id", "first"),
        n_messages=("message_id", "size"),
    ).reset_index(drop=True)
    turns["turn_index"] = turns.groupby("session_id", sort=False).cumcount()
    return turns


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
    """Context->reply pairs for the persona's turns, with their split."""
    rows: list[dict[str, Any]] = []
    if not turns.empty:
        splits = session_split(turns["session_id"], options).tolist()
        speakers = turns["speaker"].tolist()
        texts = turns["text"].tolist()
        personas = turns["is_persona"].tolist()
        sessions = turns["session_id"].tolist()
        index = turns["turn_index"].tolist()
        first_ids = turns["first_message_id"].tolist()
        conversations = turns["conversation_id"].tolist()
        starts = turns["ts_start"].tolist()
        for i in np.flatnonzero(
            turns["is_persona"].to_numpy() & (turns["turn_index"].to_numpy() > 0)
        ).tolist():
            start = i - min(index[i], options.context_turns)
            context = [
                {"speaker": speakers[j], "text": texts[j], "is_persona": bool(personas[j])}
                for j in range(start, i)
            ]
            first_id = first_ids[i]
            rows.append(
                {
                    "pair_id": hashlib.sha256(f"{owner_id}:{persona_id}:{first_id}".encode()).hexdigest()[
                        :20
                    ],
                    "owner_id": owner_id,
                    "persona_id": persona_id,
                    "conversation_id": conversations[i],
                    "session_id": sessions[i],
                    "split": splits[i],
                    "context": context,
                    "reply": texts[i],
                    "reply_speaker": speakers[i],
                    "reply_ts": starts[i],
                    "reply_message_id": first_id,
                }
            )
    return pa.Table.from_pylist(rows, schema=PAIR_SCHEMA)
