"""Platform landing data: contract parsing, staging, consent routing and watermarks (plain functions)."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from infra.storage import Storage, open_storage
from parsers.platform import synth
from parsers.platform.events import parse_chat_events, parse_consents, parse_voice_manifest
from tasks.ingest.lake import load_message_table
from tasks.ingest.platform import stage_chat_file, write_landing
from tasks.ingest.recycling import commit_pass, plan_pass, route_pass

START = date(2024, 3, 1)


def _event(**overrides: object) -> bytes:
    event: dict[str, object] = {
        "event_id": "e1",
        "room_id": "room-1",
        "room_kind": "private",
        "sender_id": "u1",
        "sender_name": "김순자",
        "sent_at": "2024-03-01T09:00:00+09:00",
        "type": "text",
        "content": "밥 먹었니?",
    }
    event.update(overrides)
    return json.dumps(event, ensure_ascii=False).encode()


def test_chat_events_keep_good_lines_and_name_the_bad_field() -> None:
    lines = [
        _event(),
        b"{not json",
        _event(sent_at="2024-03-01T09:00:00"),
        _event(type="hologram"),
        _event(room_kind="secret"),
        _event(sender_id=None),
        _event(content=None),
        _event(event_id="e2", type="image", content=None),
        b"[1, 2]",
    ]
    table, rejected = parse_chat_events(b"\n".join(lines), "chat.jsonl")
    assert table.num_rows == 2
    assert table["ts"][0].as_py().isoformat() == "2024-03-01T00:00:00+00:00"
    assert table["kind"].to_pylist() == ["text", "photo"]
    reasons = {r.line_no: r.reason for r in rejected}
    assert reasons[2].startswith("not a JSON object")
    assert reasons[3] == "field sent_at: time without a UTC offset: '2024-03-01T09:00:00'"
    assert reasons[4] == "field type: unknown event type 'hologram'"
    assert reasons[5].startswith("field room_kind: 'secret' is not one of")
    assert reasons[6] == "field sender_id: missing"
    assert reasons[7] == "field content: a text event needs content"
    assert reasons[9] == "not a JSON object"
    assert all(r.source_file == "chat.jsonl" for r in rejected)


def test_consents_and_voice_manifests_are_validated() -> None:
    consents, bad = parse_consents(
        b'{"consent_id": "c1", "owner_id": "o1", "subject_id": "u1", "persona": "\xec\x97\x84\xeb\xa7\x88", '
        b'"granted_at": "2024-01-01T00:00:00Z"}\n'
        b'{"consent_id": "c2", "owner_id": "../etc", "subject_id": "u1", "persona": "x", "granted_at": "2024-01-01T00:00:00Z"}\n',
        "consent.jsonl",
    )
    assert [c.persona for c in consents] == ["엄마"] and consents[0].scope == "all"
    assert bad[0].reason.startswith("field owner_id:")
    records, bad = parse_voice_manifest(
        b'{"recording_id": "r1", "room_id": "room-1", "speaker_id": "u1", "started_at": "2024-01-01T00:00:00Z", '
        b'"duration_s": 2, "audio_path": "a/r1.wav"}\n'
        b'{"recording_id": "r2", "room_id": "room-1", "speaker_id": "u1", "started_at": "2024-01-01T00:00:00Z", '
        b'"duration_s": 2.5, "audio_path": "../../secret"}\n',
        "voice.jsonl",
    )
    assert [r["duration_s"] for r in records] == [2.0]
    assert bad[0].reason == "field audio_path: unsafe path '../../secret'"


def _lake(tmp_path: Path) -> Storage:
    return open_storage(f"file://{tmp_path}/lake")


def _run(storage: Storage, as_of: date):
    plan = plan_pass(storage, as_of)
    staged = [stage_chat_file(storage, key) for key in plan.chat_files]
    routed = route_pass(storage, plan, staged)
    commit_pass(storage, plan, routed)
    return plan, routed


def test_recycling_routes_consented_subjects_and_is_incremental(tmp_path: Path) -> None:
    storage = _lake(tmp_path)
    rooms = synth.world(4, seed=2)
    write_landing(storage, synth.history(rooms, START, days=3, events_per_day=120))
    plan, routed = _run(storage, START + timedelta(days=2))
    assert len(plan.chat_files) == 3 and len(plan.voice_files) == 3
    owners = {p.owner_id for p in routed.parts}
    assert owners and owners <= {r.owner_id for r in rooms}
    for room in rooms:
        if room.owner_id not in owners:
            continue
        table = load_message_table(storage, room.owner_id)
        speakers = set(table["speaker"].to_pylist())
        assert room.persona in speakers  # the subject speaks as the persona
        others = speakers - {room.persona, None}
        assert others and all(s.endswith("]") and "[u-" in s for s in others)  # tagged, never a persona
        assert set(table["conversation_id"].to_pylist()) == {room.room_id}
    total = {o: load_message_table(storage, o).num_rows for o in owners}
    assert sum(total.values()) == sum(p.rows for p in routed.parts)

    # Nothing new: nothing read, nothing written.
    again_plan, again = _run(storage, START + timedelta(days=2))
    assert (again_plan.chat_files, again_plan.voice_files, again.parts) == ([], [], [])

    # One new day: only its files are read, only its rooms' owners change, no duplicate rows.
    write_landing(storage, synth.day_files(rooms, START + timedelta(days=3), events=50, seed=1))
    plan3, routed3 = _run(storage, START + timedelta(days=3))
    assert len(plan3.chat_files) == 1
    for owner in {p.owner_id for p in routed3.parts}:
        table = load_message_table(storage, owner)
        ids = table["message_id"].to_pylist()
        assert len(ids) == len(set(ids))


def test_consent_scope_revocation_and_tombstones(tmp_path: Path) -> None:
    from tasks.lifecycle.forgetting import forget

    storage = _lake(tmp_path)
    rooms = [
        synth.Room("room-pub", "public", "u-s1", "김순자", "엄마", "owner-a", "민지네", ()),
        synth.Room("room-priv", "private", "u-s2", "박영수", "아빠", "owner-b", "준호네", ()),
        synth.Room("room-gone", "private", "u-s3", "이말순", "할머니", "owner-c", "서연네", ()),
    ]
    files = synth.day_files(rooms, START, events=60, active_share=1.0, voice=0)
    consents = [
        json.loads(line)
        for line in synth.consent_files(rooms)["landing/platform/consent/consents.jsonl"].splitlines()
    ]
    consents[1]["scope"] = "public"  # owner-b may only use public rooms: room-priv is private
    consents[2]["revoked_at"] = "2024-02-01T00:00:00+09:00"
    files["landing/platform/consent/consents.jsonl"] = "\n".join(
        json.dumps(c, ensure_ascii=False) for c in consents
    ).encode()
    write_landing(storage, files)
    forget(storage, None, "owner-a")  # tombstone before the data ever arrives
    _, routed = _run(storage, START)
    assert routed.parts == []
    assert storage.list("messages/") == []
    staged = storage.list("staging/platform/chat/")
    assert {k.split("/")[3] for k in staged} == {"room=room-pub", "room=room-priv", "room=room-gone"}


def test_bad_landing_lines_go_to_platform_quarantine(tmp_path: Path) -> None:
    storage = _lake(tmp_path)
    rooms = synth.world(2, seed=3)
    write_landing(storage, synth.consent_files(rooms))
    write_landing(storage, synth.day_files(rooms, START, events=40, bad_lines=3, voice=0))
    _, routed = _run(storage, START)
    (key,) = storage.list("quarantine/platform/")
    rows = pq.read_table(io.BytesIO(storage.read_bytes(key))).to_pylist()
    assert len(rows) == 3 and all(r["reason"] for r in rows)
    assert sum(p.rows for p in routed.parts) == 40


def test_a_new_consent_backfills_history_without_new_landing_files(tmp_path: Path) -> None:
    storage = _lake(tmp_path)
    rooms = [synth.Room("room-priv", "private", "u-s2", "박영수", "아빠", "owner-b", "준호네", ())]
    write_landing(storage, synth.day_files(rooms, START, events=30, voice=0))
    write_landing(storage, synth.day_files(rooms, START + timedelta(days=1), events=30, voice=0))
    _, routed = _run(storage, START + timedelta(days=1))
    assert routed.parts == []  # no consent yet: staged, not routed
    grant = {
        "consent_id": "late",
        "owner_id": "owner-d",
        "subject_id": "u-s2",
        "persona": "아빠",
        "granted_at": "2024-03-05T00:00:00+09:00",
    }
    write_landing(storage, {"landing/platform/consent/late.jsonl": json.dumps(grant).encode()})
    plan, routed = _run(storage, START + timedelta(days=1))
    assert plan.chat_files == []
    assert [(p.owner_id, p.persona, p.rows) for p in routed.parts] == [("owner-d", "아빠", 60)]
    _, again = _run(storage, START + timedelta(days=1))
    assert again.parts == []


def test_a_pass_planned_before_a_forget_never_routes_or_rebuilds_the_forgotten_persona(
    tmp_path: Path,
) -> None:
    from tasks.lifecycle.forget import Subject, write_tombstone
    from tasks.training.prefect_tasks import _refresh_persona

    storage = _lake(tmp_path)
    rooms = synth.world(3, seed=4, public_share=0.0)
    write_landing(storage, synth.history(rooms, START, days=2, events_per_day=90))
    plan = plan_pass(storage, START + timedelta(days=1))
    forgotten = rooms[0]
    assert any(c.owner_id == forgotten.owner_id for c in plan.consents)  # planned while still consented
    staged = [stage_chat_file(storage, key) for key in plan.chat_files]
    write_tombstone(storage, Subject(forgotten.owner_id, [forgotten.persona]))  # the forget lands now
    routed = route_pass(storage, plan, staged)
    assert (forgotten.owner_id, forgotten.persona) not in {(p.owner_id, p.persona) for p in routed.parts}
    assert storage.list(f"messages/owner={forgotten.owner_id}/") == []  # nothing of them written
    assert routed.parts  # the others were routed
    refreshed = _refresh_persona(storage.url, forgotten.owner_id, forgotten.persona, train=False, index=False)
    assert refreshed["status"] == "skipped" and refreshed["reason"] == "forgotten"


def test_forget_clears_the_subjects_quarantined_lines_and_ledger_pieces_and_a_racing_pass_keeps_them_out(
    tmp_path: Path,
) -> None:
    from tasks.lifecycle.forgetting import forget
    from tasks.runs.retries import RetryItem

    storage = _lake(tmp_path)
    rooms = [
        synth.Room("room-a", "private", "u-s1", "김순자", "엄마", "owner-a", "민지네", ()),
        synth.Room("room-b", "private", "u-s2", "박영수", "아빠", "owner-b", "준호네", ()),
    ]
    files = {**synth.consent_files(rooms), **synth.day_files(rooms, START, events=40, voice=0)}
    (chat,) = [k for k in files if "/chat/" in k]
    broken = [  # cut off mid-line: no parsed sender, but the raw line is the subject's words
        '{"event_id": "ev-x1", "room_id": "room-a", "sender_id": "u-s1", "content": "우리 집 비밀번호는 4',
        '{"event_id": "ev-x2", "room_id": "room-b", "sender_id": "u-s2", "content": "아빠 말',
    ]
    files[chat] = files[chat] + ("\n".join(broken) + "\n").encode()
    write_landing(storage, files)
    plan = plan_pass(storage, START)
    staged = [stage_chat_file(storage, key) for key in plan.chat_files]
    routed = route_pass(storage, plan, staged)
    failed = [
        RetryItem("text", "owner-a", "엄마", error="train failed"),
        RetryItem("text", "owner-b", "아빠"),
    ]
    commit_pass(storage, plan, routed, failed=failed)
    racing = plan_pass(storage, START)  # a pass planned before the forget, committed after it

    receipt = forget(storage, None, "owner-a", "엄마")
    assert receipt["left"]["platform_lines"] == 0 and receipt["left"]["ledger_pieces"] == 0
    assert all(v == 0 for v in receipt["left"].values()), receipt["left"]
    (key,) = storage.list("quarantine/platform/")
    raw = pq.read_table(io.BytesIO(storage.read_bytes(key)))["raw"].to_pylist()
    assert raw == [broken[1]]  # the other subject's line stays for the operator

    commit_pass(storage, racing, route_pass(storage, racing, []))
    from tasks.ingest.watermarks import load_state

    assert [i.persona for i in load_state(storage).failed.values()] == ["아빠"]
