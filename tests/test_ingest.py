"""Ingest into a real file:// lake: layout, schema, idempotence, quarantine, zip exports."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from flows.cli import main
from infra.settings import Settings
from infra.storage import LocalStorage, open_storage
from parsers.errors import InputError
from schemas.message import MESSAGE_SCHEMA, QUARANTINE_SCHEMA
from tasks.ingest.uploads import ingest_export


def _ingest(path: Path, lake: Path, owner: str = "alice", **settings: Any):
    return ingest_export(path, owner, open_storage(f"file://{lake}"), Settings(**settings))


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ingest_writes_raw_messages_quarantine_and_summary(tmp_path: Path, golden: Path) -> None:
    lake = tmp_path / "lake"
    summary = _ingest(golden / "android_ko.txt", lake)
    upload = summary.upload_id
    assert sorted(_files(lake)) == [
        f"messages/owner=alice/source=kakao_android_txt/{upload}.parquet",
        f"quarantine/alice/{upload}.parquet",
        f"raw/alice/{upload}/_ingest.json",
        f"raw/alice/{upload}/android_ko.txt",
    ]
    assert (lake / f"raw/alice/{upload}/android_ko.txt").read_bytes() == (
        golden / "android_ko.txt"
    ).read_bytes()
    table = pq.read_table(lake / f"messages/owner=alice/source=kakao_android_txt/{upload}.parquet")
    assert table.schema.equals(MESSAGE_SCHEMA, check_metadata=False)
    assert table.num_rows == summary.messages == 15
    assert set(table.column("owner_id").to_pylist()) == {"alice"}
    assert pq.read_table(lake / f"quarantine/alice/{upload}.parquet").schema.equals(
        QUARANTINE_SCHEMA, check_metadata=False
    )
    stored = json.loads((lake / f"raw/alice/{upload}/_ingest.json").read_text(encoding="utf-8"))
    assert stored["messages"] == 15 and stored["files"][0]["format"] == "android_ko"
    assert summary.files[0].by_speaker == {"엄마": 8, "나": 3, "(system)": 2, "아빠": 1, "김 민 준 (회사)": 1}


def test_reingest_is_idempotent(tmp_path: Path, golden: Path) -> None:
    lake = tmp_path / "lake"
    first = _ingest(golden / "pc_ko.txt", lake)
    before = _files(lake)
    second = _ingest(golden / "pc_ko.txt", lake)
    after = _files(lake)
    assert (first.resumed, second.resumed) == (False, True)  # found complete: not parsed again
    assert {**first.to_dict(), "resumed": True} == second.to_dict()
    assert before == after
    parts = [k for k in after if k.startswith("messages/")]
    assert len(parts) == 1
    ids = pq.read_table(lake / parts[0]).column("message_id").to_pylist()
    assert len(ids) == len(set(ids)) == 20


def test_a_removed_part_or_another_code_version_is_ingested_again(tmp_path: Path, golden: Path) -> None:
    lake = tmp_path / "lake"
    first = _ingest(golden / "pc_ko.txt", lake)
    (lake / first.files[0].messages_key).unlink()
    again = _ingest(golden / "pc_ko.txt", lake)
    assert again.resumed is False and (lake / first.files[0].messages_key).exists()
    marker = lake / f"raw/alice/{first.upload_id}/_ingest.json"
    stored = json.loads(marker.read_text(encoding="utf-8"))
    marker.write_text(json.dumps({**stored, "code_version": "rememberme-0.0.1"}), encoding="utf-8")
    assert _ingest(golden / "pc_ko.txt", lake).resumed is False


def test_cli_ingest_json_summary(tmp_path: Path, golden: Path, capsys) -> None:
    code = main(
        [
            "ingest",
            str(golden / "mac_csv.csv"),
            "--owner",
            "bob",
            "--lake",
            f"file://{tmp_path}/lake",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    summary = json.loads(out)
    assert summary["messages"] == 5 and summary["quarantined"] == 0
    assert summary["files"][0]["by_kind"] == {"text": 2, "deleted": 1, "system": 1, "photo": 1}
    assert summary["files"][0]["source"] == "kakao_mac_csv"


def test_default_lake_is_data_under_the_working_directory(tmp_path: Path, golden: Path, capsys) -> None:
    assert main(["ingest", str(golden / "ios_en.txt"), "--owner", "carol"]) == 0
    assert "ingested" in capsys.readouterr().out
    assert list((tmp_path / "data" / "messages" / "owner=carol").rglob("*.parquet"))


def _quarantine(lake: Path) -> list[dict[str, object]]:
    (part,) = (lake / "quarantine").rglob("*.parquet")
    return pq.read_table(part).to_pylist()


def test_bad_lines_are_quarantined_with_reasons_and_the_rest_kept(tmp_path: Path) -> None:
    export = tmp_path / "bad.txt"
    lines = [
        "엄마 님과 카카오톡 대화",
        "저장한 날짜 : 2024년 7월 6일 오후 10:05",
        "이 줄은 무엇인지 모르는 머리말",
        "2024년 7월 5일 오후 3:04, 엄마 : 정상",
        "2024년 2월 30일 오후 3:05, 엄마 : 없는 날짜",
        "2024년 7월 5일 오후 13:05, 엄마 : 없는 시각",
        "2024년 7월 5일 오후 3:06, 나 : 깨진 \xff 바이트",
        "2024년 7월 5일 오후 3:07, 엄마 : 마지막 정상",
        "2024년 7월 5일 오후",
    ]
    data = "\r\n".join(lines).encode("utf-8").replace("\xff".encode(), b"\xff")
    export.write_bytes(data)
    summary = _ingest(export, tmp_path / "lake")
    assert summary.messages == 2
    rows = {(r["line_no"], r["reason"]) for r in _quarantine(tmp_path / "lake")}
    assert rows == {
        (3, "unrecognised line before the first message"),
        (5, "invalid date or time"),
        (6, "invalid date or time"),
        (7, "undecodable bytes in utf-8"),
        (9, "truncated last line"),
    }
    raws = {r["line_no"]: r["raw"] for r in _quarantine(tmp_path / "lake")}
    assert raws[5] == "2024년 2월 30일 오후 3:05, 엄마 : 없는 날짜"


def test_bad_csv_rows_are_quarantined(tmp_path: Path) -> None:
    export = tmp_path / "mac.csv"
    export.write_text(
        'Date,User,Message\n2024-05-17 09:10:33,"엄마","좋아"\nnot,a,date\n2024-05-17 09:11:00,"a"\n'
        '2024-05-17 09:12:00,"나","끝"\n',
        encoding="utf-8",
    )
    summary = _ingest(export, tmp_path / "lake")
    assert summary.messages == 2
    assert {(r["line_no"], r["reason"]) for r in _quarantine(tmp_path / "lake")} == {
        (3, "invalid date or time"),
        (4, "malformed CSV row (expected Date,User,Message)"),
    }


def test_failed_write_leaves_no_partial_object(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, "file://x")
    with pytest.raises(RuntimeError), storage.open_write("a/b.parquet") as handle:
        handle.write(b"half")
        raise RuntimeError("disk full")
    assert list(tmp_path.rglob("*")) == [tmp_path / "a"]


def test_undetectable_upload_writes_nothing(tmp_path: Path) -> None:
    export = tmp_path / "x.txt"
    export.write_text("hello\n", encoding="utf-8")
    with pytest.raises(InputError):
        _ingest(export, tmp_path / "lake")
    assert not (tmp_path / "lake").exists()


# -- zip exports -------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_export_links_media_and_refuses_unsafe_members(tmp_path: Path, golden: Path) -> None:
    chat = (
        b"KakaoTalk Chats with Kim\r\nDate Saved : May 28, 2018, 9:46 AM\r\n\r\n"
        b"March 3, 2018, 8:54 PM, Kim : Photo\r\n"
        b"March 3, 2018, 8:55 PM, Kim : File: plan.pdf\r\n"
        b"March 3, 2018, 8:56 PM, Kim : Hello\r\n"
    )
    upload = _zip(
        tmp_path / "export.zip",
        {
            "KakaoTalk_Chats.txt": chat,
            "media/20180303_205410.jpg": b"\xff\xd8jpeg",
            "media/plan.pdf": b"%PDF-1.4",
            "../evil.txt": b"escape",
            "/abs/evil.jpg": b"escape",
        },
    )
    lake = tmp_path / "lake"
    summary = _ingest(upload, lake)
    assert summary.messages == 3 and summary.media == 2
    (part,) = (lake / "messages").rglob("*.parquet")
    rows = pq.read_table(part).to_pylist()
    prefix = f"file://{lake}/raw/alice/{summary.upload_id}/media/media"
    assert [r["attachment"] for r in rows] == [f"{prefix}/20180303_205410.jpg", f"{prefix}/plan.pdf", None]
    assert {(r["reason"], r["raw"]) for r in _quarantine(lake)} == {
        ("unsafe path in archive (absolute or '..')", "../evil.txt"),
        ("unsafe path in archive (absolute or '..')", "/abs/evil.jpg"),
    }
    assert not (tmp_path / "evil.txt").exists()
    assert all("evil" not in p.name for p in lake.rglob("*"))


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path, capsys) -> None:
    upload = _zip(tmp_path / "bomb.zip", {"chat.txt": b"x\n", "zeros.bin": b"\0" * (40 * 1024 * 1024)})
    assert upload.stat().st_size < 200_000
    code = main(["ingest", str(upload), "--owner", "alice", "--lake", f"file://{tmp_path}/lake"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"rememberme: error: {upload}: zip member 'zeros.bin' has compression ratio ")
    assert err.endswith("(limit 200); refusing a zip bomb\n")
    assert not (tmp_path / "lake").exists()


def test_zip_total_size_limit(tmp_path: Path) -> None:
    upload = _zip(tmp_path / "big.zip", {"chat.txt": b"y" * 5000})
    with pytest.raises(InputError, match=r"zip would inflate to 5000 bytes \(limit 1000\); refusing"):
        _ingest(upload, tmp_path / "lake2", max_archive_bytes=1000)


def test_zip_without_chat_file(tmp_path: Path) -> None:
    upload = _zip(tmp_path / "photos.zip", {"a.jpg": b"jpeg"})
    with pytest.raises(InputError, match="zip holds no chat file"):
        _ingest(upload, tmp_path / "lake")


class _FailingOnce(LocalStorage):
    """Crashes the first time the quarantine object is written (after the messages landed)."""

    failed = False

    def open_write(self, key: str):
        if key.startswith("quarantine/") and not self.failed:
            type(self).failed = True
            raise OSError(28, "No space left on device")
        return super().open_write(key)


def test_rerun_after_a_crash_half_way_completes_without_duplicates(tmp_path: Path, golden: Path) -> None:
    clean = tmp_path / "clean"
    _ingest(golden / "pc_ko.txt", clean)

    crashed = tmp_path / "crashed"
    with pytest.raises(OSError, match="No space left"):
        ingest_export(golden / "pc_ko.txt", "alice", _FailingOnce(crashed, "file://x"), Settings())
    assert not list(crashed.rglob("_ingest.json"))  # no completion marker after a crash
    assert not list(crashed.rglob(".tmp-*"))
    _ingest(golden / "pc_ko.txt", crashed)
    rerun = {k: v.replace(str(crashed).encode(), b"LAKE") for k, v in _files(crashed).items()}
    assert rerun == {k: v.replace(str(clean).encode(), b"LAKE") for k, v in _files(clean).items()}


def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from flows import cli

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with cli._progress(cli.PROGRESS_MIN_BYTES) as advance:
        assert advance is not None
        advance(cli.PROGRESS_MIN_BYTES)
    with cli._progress(10) as advance:
        assert advance is None  # small files parse too fast to need one
