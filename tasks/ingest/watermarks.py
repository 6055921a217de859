"""Incremental positions over the landing area (`state/watermarks.json`).

Landing files are immutable and sit in day partitions (`.../dt=YYYY-MM-DD/name`). A stream's mark
is the last *closed* day plus the names already processed in the open days after it. Each run
lists only the open days up to `today` (cost grows with the days since the last run, not with the
history), processes what is new, and closes days older than `lookback_days` (a file arriving in a
closed day is not seen: the backend writes into the current day, the lookback covers its clock skew).

The whole state document is written once, after everything a run produced is committed, so a
run that dies half-way is simply redone from the same positions with the same outputs.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from infra.leases import check_fences
from infra.storage import Storage
from tasks.runs.retries import RetryItem

STATE_KEY = "state/watermarks.json"
_PARTITION = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/([^/]+)$")


@dataclass
class StreamMark:
    """Position in one landing stream."""

    through_dt: str | None = None
    done: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class RecyclingState:
    """Everything data recycling remembers between runs."""

    streams: dict[str, StreamMark] = field(default_factory=dict)
    #: consent id -> rooms whose history has been routed to the consent's owner
    routed: dict[str, list[str]] = field(default_factory=dict)
    runs: int = 0
    #: pieces of earlier passes that failed (tasks/runs/retries.py): retried, or parked and reported
    failed: dict[str, RetryItem] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Stable JSON bytes."""
        raw = asdict(self)
        raw["failed"] = {key: item.to_dict() for key, item in self.failed.items()}
        return json.dumps(raw, ensure_ascii=False, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> RecyclingState:
        """Parse what `to_json` wrote (states written before `failed` existed read as none)."""
        raw: dict[str, Any] = json.loads(data)
        streams = {name: StreamMark(**mark) for name, mark in raw.get("streams", {}).items()}
        failed = {key: RetryItem.from_dict(item) for key, item in raw.get("failed", {}).items()}
        return cls(streams, raw.get("routed", {}), raw.get("runs", 0), failed)


def load_state(storage: Storage) -> RecyclingState:
    """The stored state, or a fresh one."""
    if not storage.exists(STATE_KEY):
        return RecyclingState()
    return RecyclingState.from_json(storage.read_bytes(STATE_KEY))


def save_state(storage: Storage, state: RecyclingState) -> None:
    """Replace the state atomically (one writer: the recycling pass holding the recycling lock)."""
    check_fences()
    with storage.open_write(STATE_KEY) as handle:
        handle.write(state.to_json())


def pending_files(storage: Storage, prefix: str, mark: StreamMark, today: date) -> list[str]:
    """Landing keys under `prefix` (`.../dt=DAY/name`) not processed yet, oldest day first."""
    if mark.through_dt is None:
        keys = storage.list(prefix)
    else:
        first = date.fromisoformat(mark.through_dt) + timedelta(days=1)
        days = {first + timedelta(days=n) for n in range(max(0, (today - first).days + 1))}
        days |= {date.fromisoformat(d) for d in mark.done}
        keys = [k for day in sorted(days) for k in storage.list(f"{prefix}dt={day.isoformat()}/")]
    out = []
    for key in keys:
        match = _PARTITION.search(key)
        if not match:
            continue
        day, name = match.groups()
        if mark.through_dt is not None and day <= mark.through_dt:
            continue
        if name not in mark.done.get(day, []):
            out.append(key)
    return sorted(out, key=lambda k: (_PARTITION.search(k).group(1), k))  # type: ignore[union-attr]


def advance(mark: StreamMark, processed: list[str], today: date, lookback_days: int) -> StreamMark:
    """The mark after `processed` committed: names recorded, days older than the lookback closed."""
    done = {day: set(names) for day, names in mark.done.items()}
    for key in processed:
        match = _PARTITION.search(key)
        if match:
            done.setdefault(match.group(1), set()).add(match.group(2))
    close = (today - timedelta(days=lookback_days + 1)).isoformat()
    through = mark.through_dt
    if through is None or close > through:
        through = close
    return StreamMark(through, {d: sorted(n) for d, n in sorted(done.items()) if d > through})
