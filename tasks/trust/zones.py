"""The trust boundary: which storage areas may hold original text, and the one way out of them.

**Source of truth** (original text, read only by the pipeline on behalf of its owner):
`raw/{owner}/`, `messages/owner={owner}/`, `quarantine/{owner}/`, and the platform's own
`landing/platform/` and `staging/platform/`.

**Derived** (redacted text only, never a personal number): both search indices, `datasets/`,
tokenizers and models, base corpora, voice datasets, Prefect artifacts and results, logs and CLI
output (`parse` aside: a debugging view of the owner's own file).

Every derived consumer of message rows reads them through `derived_messages` (or `redacted`, for
rows already in hand): redaction by `tasks.trust.pii.redact_messages`, the same function the dataset
build runs as its `redact_pii` step. A new consumer that reads the lake another way skips the
boundary; the planted-data test (`tests/test_zones.py`) scans every file for what it would leak.
"""

from __future__ import annotations

import pyarrow as pa

from infra.storage import Storage
from tasks.ingest.lake import load_message_table, read_parts
from tasks.trust.pii import Pseudonymizer, redact, redact_messages

#: Storage prefixes that may hold original text.
SOURCE_OF_TRUTH = ("raw/", "messages/", "quarantine/", "landing/platform/", "staging/platform/")


def is_source_of_truth(key: str) -> bool:
    """Whether `key` lies in an area allowed to hold original text."""
    return key.startswith(SOURCE_OF_TRUTH)


def redacted(table: pa.Table) -> pa.Table:
    """Message rows with every personal value in `text` replaced by a typed pseudonym.

    Pseudonyms are numbered by first appearance in (ts, message_id) order within `table`, as the
    dataset build numbers them; the rows come back in that order.
    """
    if table.num_rows == 0:
        return table
    frame = table.to_pandas().sort_values(["ts", "message_id"], kind="stable")
    result = redact_messages(frame, Pseudonymizer())
    return pa.Table.from_pandas(result.kept.reset_index(drop=True), schema=table.schema, preserve_index=False)


def derived_messages(storage: Storage, owner_id: str, parts: list[str] | None = None) -> pa.Table:
    """An owner's message rows (all, or only `parts`) as anything derived may hold them."""
    table = read_parts(storage, parts) if parts is not None else load_message_table(storage, owner_id)
    return redacted(table)


def speakable(transcript: str | None) -> str | None:
    """A transcript as a derived voice dataset may keep it: withheld (None) if it holds personal data.

    Not redacted but withheld: the recording says the number too, so words and audio with a
    pseudonym in place would teach the voice a lie, and the utterance must not train at all.
    """
    if not transcript:
        return transcript
    _, found = redact(transcript, Pseudonymizer())
    return None if found else transcript
