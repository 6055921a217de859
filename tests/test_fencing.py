"""Fencing: a holder whose persona lock ran out or was taken over commits nothing more.

A run that stalls (a long GC pause, a frozen VM, a lost network) past its lease may wake up after
another run has taken the lock over; every commit point (a version's manifest, an alias move, a
bulk index write, a forget's journal) checks the lease first and stops it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from infra.leases import LeaseLostError, check_fences, fence_tokens, lease
from infra.registry import Registry
from infra.storage import Storage, open_storage
from infra.versions import VersionedStore


class Stalling:
    """A lake whose locks this holder cannot reach once `stalled` is set (a frozen or cut-off holder)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.stalled = threading.Event()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("read_versioned", "replace_if"):

            def guarded(key: str, *args: Any) -> Any:
                if self.stalled.is_set() and key.startswith("locks/"):
                    raise ConnectionError("the lake is unreachable from this holder")
                return attr(key, *args)

            return guarded
        return attr


def _take_over(storage: Storage, name: str, hold_s: float, taken: threading.Event) -> threading.Thread:
    def other_run() -> None:
        with lease(storage, name, ttl_s=5.0, poll_s=0.05):
            taken.set()
            time.sleep(hold_s)

    thread = threading.Thread(target=other_run)
    thread.start()
    return thread


def test_a_holder_whose_lease_was_taken_over_publishes_nothing_and_keeps_the_new_holders_lock(
    tmp_path: Path,
) -> None:
    lake = open_storage(f"file://{tmp_path}/lake")
    stalling = Stalling(lake)
    taken = threading.Event()
    with lease(stalling, "persona-o-p", ttl_s=0.6) as key:
        assert fence_tokens()["persona-o-p"] > 0
        check_fences()  # held: commits go on
        stalling.stalled.set()  # the holder freezes: no renewal reaches the lake
        other = _take_over(lake, "persona-o-p", 1.0, taken)
        assert taken.wait(10), "the other run never took the expired lease over"
        store = VersionedStore(lake, "datasets/o/p")
        with pytest.raises(LeaseLostError, match="persona-o-p"):
            store.write({"pairs.parquet": b"x"}, {})
        assert store.versions() == []  # files may be there; no manifest: the version does not exist
        with pytest.raises(LeaseLostError):
            check_fences()
        stalling.stalled.clear()  # back in reach: the release sees the lease is another run's
    # Leaving the block must not delete the lock the other run now holds.
    assert lake.exists(key)
    other.join()
    assert lake.list("locks/") == []


def test_an_alias_move_after_the_lease_was_taken_over_is_refused(tmp_path: Path) -> None:
    lake = open_storage(f"file://{tmp_path}/lake")
    registry = Registry(lake)
    published = registry.publish("o", "p", "text", {"w.bin": b"1"}, {"promotion": {"promote": True}})
    stalling = Stalling(lake)
    taken = threading.Event()
    with lease(stalling, "persona-o-p", ttl_s=0.6):
        stalling.stalled.set()
        other = _take_over(lake, "persona-o-p", 0.5, taken)
        assert taken.wait(10)
        with pytest.raises(LeaseLostError):
            registry.set_alias("o", "p", "text", "production", published["version"])
    other.join()
    assert "production" not in registry.aliases("o", "p", "text")


def test_renewals_failing_for_a_whole_lease_period_stop_the_holder_even_if_nobody_took_over(
    tmp_path: Path,
) -> None:
    lake = open_storage(f"file://{tmp_path}/lake")
    stalling = Stalling(lake)
    with lease(stalling, "persona-o-q", ttl_s=0.6):
        stalling.stalled.set()
        time.sleep(1.0)  # a lease period without one successful renewal
        with pytest.raises(LeaseLostError, match="not renewed within"):
            check_fences()
    assert fence_tokens() == {}  # outside the block nothing is held, nothing checked
    check_fences()


def test_a_takeover_gets_a_larger_fencing_token(tmp_path: Path) -> None:
    lake = open_storage(f"file://{tmp_path}/lake")
    stalling = Stalling(lake)
    taken = threading.Event()
    tokens: list[int] = []
    with lease(stalling, "persona-o-r", ttl_s=0.5):
        tokens.append(fence_tokens()["persona-o-r"])
        stalling.stalled.set()

        def other_run() -> None:
            with lease(lake, "persona-o-r", ttl_s=5.0, poll_s=0.05):
                tokens.append(fence_tokens()["persona-o-r"])
                taken.set()

        thread = threading.Thread(target=other_run)
        thread.start()
        assert taken.wait(10)
        thread.join()
    assert tokens[1] > tokens[0]


def test_a_holder_that_lapsed_but_was_not_taken_over_proves_its_lease_and_goes_on(tmp_path: Path) -> None:
    lake = open_storage(f"file://{tmp_path}/lake")
    stalling = Stalling(lake)
    with lease(stalling, "persona-o-s", ttl_s=0.6) as key:
        stalling.stalled.set()
        time.sleep(1.0)  # lapsed: nobody took it over
        stalling.stalled.clear()  # the network is back before anyone wanted the lock
        check_fences()  # proven by a renewal now: the work goes on
        VersionedStore(lake, "datasets/o/s").write({"a": b"1"}, {})
    assert not lake.exists(key)
