"""Writers racing in real processes: versions stay whole, the persona lease serialises, leases expire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.leases import LeaseTimeoutError, lease
from infra.settings import Settings
from infra.storage import open_storage
from infra.versions import VersionedStore, read_verified
from tasks.ingest.uploads import ingest_export

ROOT = Path(__file__).parents[1]
SAMPLE = ROOT / "samples" / "kakao_android_ko.txt"

_BUILD = """
import sys, time
from infra.storage import open_storage
from tasks.datasets.build import build_dataset
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))  # all four begin together
print(build_dataset(open_storage(sys.argv[1]), "demo", "엄마").version)
"""


def _at_once(commands: list[list[str]], env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    procs = [
        subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        out.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return out


pytestmark = pytest.mark.integration  # real processes racing over one lake


@pytest.fixture
def lake(tmp_path: Path) -> str:
    url = f"file://{tmp_path}/lake"
    ingest_export(SAMPLE, "demo", open_storage(url), Settings())
    return url


def test_four_builds_of_one_persona_at_once_leave_only_whole_versions(lake: str) -> None:
    start = str(time.time() + 8)  # the imports of four interpreters on two cores
    results = _at_once([[sys.executable, "-c", _BUILD, lake, start]] * 4, dict(os.environ))
    assert all(r.returncode == 0 for r in results), [r.stderr[-500:] for r in results]
    store = VersionedStore(open_storage(lake), "datasets/demo/엄마")
    versions = store.versions()
    assert 1 <= len(versions) <= 4 and {int(r.stdout.split()[-1]) for r in results} <= set(versions)
    hashes = set()
    for version in versions:  # every version whole: each file matches its own manifest
        manifest = store.manifest(version)
        for name in manifest["files"]:
            read_verified(open_storage(lake), f"datasets/demo/엄마/v{version}/{name}")
        hashes.add(manifest["content_hash"])
    assert len(hashes) == 1  # identical input: identical content, whatever the number


def test_four_cli_builds_at_once_queue_on_the_persona_lease_and_make_one_version(lake: str) -> None:
    command = [sys.executable, "-m", "flows.cli", "dataset", "build", "--lake", lake, "--owner", "demo",
               "--persona", "엄마", "--json"]  # fmt: skip
    results = _at_once([command] * 4, dict(os.environ))
    assert all(r.returncode == 0 for r in results), [r.stderr[-500:] for r in results]
    summaries = [json.loads(r.stdout.strip().splitlines()[-1]) for r in results]
    assert sorted(s["created"] for s in summaries) == [False, False, False, True]
    assert {s["version"] for s in summaries} == {1}
    assert VersionedStore(open_storage(lake), "datasets/demo/엄마").versions() == [1]
    assert open_storage(lake).list("locks/") == []  # every lease released


def test_a_dead_holders_lease_expires_and_a_live_one_is_waited_for(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    stale = {"holder": "crashed", "expires": time.time() - 1, "host": "h", "pid": 1}
    assert storage.create("locks/p.json", json.dumps(stale).encode())
    with lease(storage, "p", ttl_s=1.5):  # taken over from the dead holder
        time.sleep(2)  # longer than the ttl: the renewer keeps it ours
        with (
            pytest.raises(LeaseTimeoutError, match="p is held by another run"),
            lease(storage, "p", timeout_s=1),
        ):
            pass
    assert storage.list("locks/") == []


def test_a_lease_excludes_a_second_holder_on_every_backend(lake_url: str) -> None:
    import threading

    storage = open_storage(lake_url)
    order: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with lease(storage, "persona-o1-x", ttl_s=3):
            inside.set()
            time.sleep(1.5)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(30)
    with lease(storage, "persona-o1-x", ttl_s=3, timeout_s=30):
        order.append("second in")
    thread.join(30)
    assert order == ["first out", "second in"]
    assert storage.list("locks/") == []
