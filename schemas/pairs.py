"""Training pairs (context -> the persona's reply) and the dataset manifest contract."""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from schemas.message import TS_TYPE

CONTEXT_TURN: Final = pa.struct(
    [
        pa.field("speaker", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("is_persona", pa.bool_(), nullable=False),
    ]
)

PAIR_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("owner_id", pa.string(), nullable=False),
        pa.field("persona_id", pa.string(), nullable=False),
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),  # "train" | "validation"
        pa.field("context", pa.list_(CONTEXT_TURN), nullable=False),  # oldest first
        pa.field("reply", pa.string(), nullable=False),
        pa.field("reply_speaker", pa.string(), nullable=False),
        pa.field("reply_ts", TS_TYPE, nullable=False),
        pa.field("reply_message_id", pa.string(), nullable=False),
        # The reply's whole messages (a burst's, in order; one for a single message): chat may say
        # one of them alone, never a piece of one. Absent in datasets built before it was kept.
        pa.field("reply_parts", pa.list_(pa.string()), nullable=True),
    ],
    metadata={"contract": "rememberme.pair.v1"},
)

AUDIT_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("step", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),  # "dropped" | "changed"
        pa.field("reason", pa.string(), nullable=False),
    ],
    metadata={"contract": "rememberme.audit.v1"},
)
