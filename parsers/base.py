"""What every parser shares: the context it parses in and the batches it yields."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.message import MESSAGE_SCHEMA, QUARANTINE_SCHEMA, TS_TYPE

_ID_DIGITS = 10


@dataclass(frozen=True)
class ParseContext:
    """Identity of the file being parsed; it feeds ids, timestamps and quarantine rows."""

    owner_id: str
    upload_id: str
    #: Name of the file as shown to the user (errors, quarantine rows).
    source_file: str
    #: Hex digest of the file's bytes: message ids derive from it and the line number.
    file_key: str
    conversation_id: str
    timezone: str


@dataclass(frozen=True)
class ParseBatch:
    """Messages and rejected lines of one chunk of a file."""

    messages: pa.Table
    quarantine: pa.Table


def message_ids(file_key: str, line_no: np.ndarray) -> pa.Array:
    """Deterministic ids: the file's digest plus the record's line number, `<20 hex>-<10 digits>`.

    The same file ingested twice gives the same ids, so writes keyed on them are idempotent,
    and a parser fix that changes a message's text updates the row instead of adding one.
    Built as fixed-width bytes in numpy: no per-row Python or string kernels.
    """
    prefix = np.frombuffer(f"{file_key[:20]}-".encode("ascii"), dtype=np.uint8)
    width = len(prefix) + _ID_DIGITS
    n = len(line_no)
    out = np.empty((n, width), dtype=np.uint8)
    out[:, : len(prefix)] = prefix
    rest = np.asarray(line_no, dtype=np.int64).copy()
    for k in range(width - 1, len(prefix) - 1, -1):
        out[:, k] = rest % 10 + 48
        rest //= 10
    offsets = np.arange(n + 1, dtype=np.int32) * width
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


#: The UTC seconds a message's instant may have: from 1970 up to (not including) 2200. A time outside
#: them is a broken record (a NaN, an overflow, a field in the wrong unit) and is quarantined.
FIRST_SECOND, END_SECOND = 0, 7_258_118_400


def plausible_seconds(seconds: np.ndarray) -> np.ndarray:
    """Which instants (UTC seconds) a message may have; NaN may not."""
    return (seconds >= FIRST_SECOND) & (seconds < END_SECOND)


def local_to_utc(local_seconds: np.ndarray, timezone: str) -> pa.Array:
    """Interpret naive local wall-clock seconds in `timezone` and return UTC timestamps."""
    naive = pa.array(local_seconds.astype(np.int64) * 1_000_000, pa.timestamp("us"))
    aware = pc.assume_timezone(naive, timezone, ambiguous="earliest", nonexistent="earliest")
    return aware.cast(TS_TYPE)


def build_messages(
    ctx: ParseContext,
    source: str,
    ts: pa.Array,
    speaker: pa.Array,
    text: pa.Array,
    kind: pa.Array,
    line_no: np.ndarray,
) -> pa.Table:
    """Assemble a MESSAGE_SCHEMA table from parsed columns plus the context's constants."""
    n = len(line_no)
    line_arr = pa.array(line_no, pa.int64())
    columns = [
        message_ids(ctx.file_key, line_no),
        pa.repeat(pa.scalar(ctx.owner_id, pa.string()), n),
        pa.repeat(pa.scalar(ctx.conversation_id, pa.string()), n),
        pa.repeat(pa.scalar(source, pa.string()), n),
        ts,
        speaker.cast(pa.string()),
        text.cast(pa.string()),
        kind,
        line_arr,
        pa.nulls(n, pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=MESSAGE_SCHEMA)


#: A sender shown as a phone number (WhatsApp without a saved contact, an SMS without a name).
PHONE_NAME = re.compile(r"^\+?[\d\s\-().]{7,}$")


def number_handle(owner_id: str, number: str) -> str:
    """The speaker name of a phone number with no contact name: a stable handle, never the number.

    A number is personal data, and a speaker name travels into derived stores (the search index's
    `speaker`, lineage) that must hold none; the handle is the same in every export of the owner,
    so `--persona` or `--alias` can name it.
    """
    digits = re.sub(r"[^\d+]", "", number) or number or "?"
    return "번호 " + hashlib.sha256(f"{owner_id}|{digits}".encode()).hexdigest()[:6]


def instants_ms(milliseconds: list[int]) -> pa.Array:
    """UTC instants from milliseconds since the epoch (SMS backups, Messenger)."""
    return pa.array(np.array(milliseconds, dtype=np.int64) * 1000, pa.timestamp("us", tz="UTC")).cast(TS_TYPE)


def with_conversations(table: pa.Table, conversations: list[str] | pa.Array) -> pa.Table:
    """`table` whose rows belong to the given conversations (sources of several chats in one file)."""
    index = table.schema.get_field_index("conversation_id")
    return table.set_column(index, table.schema.field(index), pa.array(conversations, pa.string()))


def build_quarantine(ctx: ParseContext, line_no: list[int], reasons: list[str], raw: list[str]) -> pa.Table:
    """Assemble a QUARANTINE_SCHEMA table for rejected lines."""
    n = len(line_no)
    return pa.Table.from_arrays(
        [
            pa.array([ctx.owner_id] * n, pa.string()),
            pa.array([ctx.upload_id] * n, pa.string()),
            pa.array([ctx.source_file] * n, pa.string()),
            pa.array(line_no, pa.int64()),
            pa.array(reasons, pa.string()),
            pa.array(raw, pa.string()),
        ],
        schema=QUARANTINE_SCHEMA,
    )


def empty_batch(ctx: ParseContext) -> ParseBatch:
    """A batch with no rows (keeps callers free of None checks)."""
    return ParseBatch(MESSAGE_SCHEMA.empty_table(), build_quarantine(ctx, [], [], []))
