"""The journal of one forget: what it must still do, written before it is done, so a re-run finishes it.

Most forget steps are idempotent by themselves (deleting what is already gone is a no-op). The
ones that are not are those whose work list is read from data the forget itself destroys: which
raw uploads held the subject's rows (the rows go first), which other personas' datasets held the
subject's words as context (after the rebuild, "nothing changed" looks the same as "nothing to
do"), which shared bases were retired (after retiring, no base names the subject). A killed forget
lost those lists; with the journal a re-run reads them back and finishes every step.

`state/forgets/{owner}/{subject key | _all}.json` holds ids only (upload digests, persona ids,
opaque subject keys), never a name: like the tombstone it outlives the data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from infra.leases import check_fences
from infra.storage import Storage

JOURNALS = "state/forgets/"


class ForgetJournal:
    """Pending work of one forget, kept in the lake; every change is written before it is acted on."""

    def __init__(self, storage: Storage, owner_id: str, subject_key: str) -> None:
        """The journal of `subject_key` (`*` for the whole owner) of `owner_id`, read if it exists."""
        self.storage = storage
        name = "_all" if subject_key == "*" else subject_key
        self.key = f"{JOURNALS}{owner_id}/{name}.json"
        data = storage.read_bytes(self.key) if storage.exists(self.key) else b"{}"
        self.data: dict[str, Any] = json.loads(data)
        #: True when an earlier run of this forget stopped before its end (the re-run resumes it).
        self.resumed = bool(self.data) and not self.data.get("finished")
        self.data.setdefault("started", datetime.now(UTC).isoformat())
        self.data.pop("finished", None)
        self.data.setdefault("pending", {})

    def _save(self) -> None:
        check_fences()  # every step of a forget is journalled: none runs once its locks are lost
        with self.storage.open_write(self.key) as handle:
            handle.write(json.dumps(self.data, sort_keys=True, indent=1).encode())

    def pending(self, step: str) -> list[str]:
        """Items of `step` recorded and not yet done."""
        return list(self.data["pending"].get(step, []))

    def add(self, step: str, items: list[str]) -> list[str]:
        """Record `items` as owed by `step` (with what an earlier run left owed); returns them all."""
        owed = sorted({*self.pending(step), *items})
        if owed != self.pending(step):
            self.data["pending"][step] = owed
            self._save()
        return owed

    def done(self, step: str, item: str) -> None:
        """Record that `item` of `step` is finished."""
        owed = [i for i in self.pending(step) if i != item]
        if owed != self.pending(step):
            self.data["pending"][step] = owed
            self._save()

    def remember(self, field: str, values: list[str]) -> list[str]:
        """Keep facts the later steps need (union with what an earlier run kept); returns them all."""
        kept = sorted({*self.data.get(field, []), *values})
        if kept != self.data.get(field):
            self.data[field] = kept
            self._save()
        return kept

    def finish(self) -> None:
        """The forget ended: nothing is owed (a later forget of the same subject starts afresh)."""
        finished = datetime.now(UTC).isoformat()
        self.data = {"started": self.data["started"], "finished": finished, "pending": {}}
        self._save()
