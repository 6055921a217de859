"""Named kill points: how we prove every durable step survives SIGKILL (tests/test_faults.py).

`REMEMBERME_FAULT=<point>[:n][,<point>[:n]...]` kills the process with SIGKILL the n-th time (default
the first) it passes `point`: its whole process group when it leads one (the CLI and the temporary
Prefect API server it started, as a preempted node loses both), else itself. Nothing is flushed,
nothing cleaned up: what a real kill leaves is what the re-run must converge from.

`REMEMBERME_FAULT_DELAY=<seed>[:max_s]` instead pauses at every point for a time drawn from the
seed (up to `max_s`, 0.5 s by default): two commands racing each other interleave differently for
each seed, and the same seed replays the same pauses (tests/test_races.py).

Every point is declared in `POINTS` with the durable step it follows, so the fault matrix runs
each of them and a misspelt point is an error rather than a run that silently never dies.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter

#: Point -> what has just become durable when it fires (and what the re-run must finish).
POINTS: dict[str, str] = {
    # instant restore
    "ingest.messages_written": "an upload's message parts are in the lake, its quarantine and marker not",
    "ingest.raw_stored": "the raw upload is stored, the marker saying the ingest is complete is not",
    "versions.files_written": "a version's files are written, its manifest (what makes it exist) is not",
    "index.bulk_chunk": "the first bulk chunk of an index write is in, the rest is not",
    "train.step": "mid training (after an optimiser step), nothing published",
    "export.onnx": "the ONNX export is written in memory, parity unchecked, nothing published",
    "registry.published": "a model version is published (latest moved), production not yet moved",
    "restore.trained": "the model is published, its pairs not indexed, no first reply",
    # data recycling
    "recycle.staged": "landing files are staged, nothing routed to the owners",
    "recycle.routed": "staged events are in the owners' lakes, nothing indexed or refreshed",
    "recycle.refreshed": "a persona was refreshed (dataset, model), the watermark not moved",
    "recycle.committed": "the watermarks and the failed-piece ledger moved, the pass's report not written",
    # forget
    "forget.tombstone": "the tombstone is written, nothing deleted",
    "forget.rows": "the subject's rows are gone from one message part, the rest not",
    "forget.source": "the source of truth is clean, search and derived objects not",
    "forget.search": "the subject's search documents are deleted, derived objects not",
    "forget.rebuilt": "another persona's dataset is rebuilt without the subject, its model not retrained",
    "forget.retrained": "another persona is retrained, its tainted versions not retired",
    "forget.history": "the lake and search are clean, Prefect's history not yet",
}

ENV = "REMEMBERME_FAULT"
DELAY_ENV = "REMEMBERME_FAULT_DELAY"
_passed: Counter[str] = Counter()
_lock = threading.Lock()


class UnknownFaultPointError(ValueError):
    """`REMEMBERME_FAULT` names a point that does not exist."""


def _armed() -> dict[str, int]:
    spec = os.environ.get(ENV, "").strip()
    armed: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, nth = item.partition(":")
        if name not in POINTS:
            known = ", ".join(sorted(POINTS))
            raise UnknownFaultPointError(f"{ENV}: no kill point {name!r} (known: {known})")
        armed[name] = int(nth) if nth else 1
    return armed


def fault_point(name: str) -> None:
    """Die here by SIGKILL when `REMEMBERME_FAULT` arms `name` and this is its n-th pass; else nothing."""
    if name not in POINTS:
        raise UnknownFaultPointError(f"no kill point {name!r}: declare it in infra/faults.py")
    if DELAY_ENV in os.environ:
        _pause(name)
    if ENV not in os.environ:
        return
    nth = _armed().get(name)
    if nth is None:
        return
    with _lock:
        _passed[name] += 1
        if _passed[name] < nth:
            return
    _die()


def _pause(name: str) -> None:
    seed, _, most = os.environ[DELAY_ENV].partition(":")
    with _lock:
        _passed[f"delay:{name}"] += 1
        nth = _passed[f"delay:{name}"]
    time.sleep(random.Random(f"{seed}:{name}:{nth}").uniform(0.0, float(most or 0.5)))


def _die() -> None:
    """SIGKILL (in-process tests replace this with a raise, to resume in the same interpreter)."""
    group = os.getpgrp()
    if group == os.getpid():
        os.killpg(group, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
