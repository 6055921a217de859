"""Reading an owner's Message rows back from the lake (the layout of DESIGN.md section 4)."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from infra.storage import Storage
from parsers.errors import InputError
from schemas.message import MESSAGE_SCHEMA


def message_parts(storage: Storage, owner_id: str) -> list[str]:
    """Every Message Parquet object of an owner, in a stable order."""
    return sorted(k for k in storage.list(f"messages/owner={owner_id}/") if k.endswith(".parquet"))


def read_parts(storage: Storage, keys: list[str]) -> pa.Table:
    """Message Parquet parts as one table (an empty table for no keys)."""
    tables = [pq.read_table(io.BytesIO(storage.read_bytes(k))) for k in keys]
    return pa.concat_tables(tables) if tables else MESSAGE_SCHEMA.empty_table()


def load_message_table(storage: Storage, owner_id: str) -> pa.Table:
    """Every Message row of an owner, from all sources; an owner without messages is an InputError."""
    keys = message_parts(storage, owner_id)
    if not keys:
        raise InputError(f"owner {owner_id}", "has no messages in the lake (ingest an export first)")
    return read_parts(storage, keys)
