"""Telegram Desktop JSON exports, written by hand from the export's documented shape and what public
parsers show of real exports (no other project's fixtures): each expected row worked out by hand.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.base import ParseContext
from parsers.errors import InputError
from parsers.exports import inspect_export, iter_batches
from parsers.telegram import columns
from parsers.telegram.export import plain_rows
from parsers.telegram.rows import MEDIA, batches
from parsers.typed_json import ShapeError
from tests.json_support import json_values

ONE_CHAT: dict[str, Any] = {
    "name": "엄마",
    "type": "personal_chat",
    "id": 4242,
    "messages": [
        {"id": 1, "type": "service", "date": "2024-01-01T09:00:00", "date_unixtime": "1704067200",
         "actor": "엄마", "actor_id": "user42", "action": "phone_call", "duration_seconds": 31, "text": "",
         "text_entities": []},
        {"id": 2, "type": "message", "date": "2024-01-01T09:01:00", "date_unixtime": "1704067260",
         "from": "엄마", "from_id": "user42", "text": "새해 복 많이 받아", "text_entities": []},
        {"id": 3, "type": "message", "date": "2024-01-01T09:02:00", "date_unixtime": "1704067320",
         "from": "민수", "from_id": "user7",
         "text": ["이거 봐요 ", {"type": "link", "text": "https://example.org"}, " 재밌어요"]},
        {"id": 4, "type": "message", "date": "2024-01-01T09:03:00", "date_unixtime": "1704067380",
         "from": "엄마", "from_id": "user42", "photo": "photos/photo_1@01-01-2024_09-03-00.jpg",
         "width": 1280, "height": 960, "text": ""},
        {"id": 5, "type": "message", "date": "2024-01-01T09:04:00", "date_unixtime": "1704067440",
         "from": "엄마", "from_id": "user42", "file": "voice_messages/audio_1.ogg",
         "media_type": "voice_message", "duration_seconds": 4, "text": ""},
        {"id": 6, "type": "message", "date": "2024-01-01T09:05:00", "date_unixtime": "1704067500",
         "from": "민수", "from_id": "user7", "file": "stickers/sticker.webp", "media_type": "sticker",
         "sticker_emoji": "😀", "text": ""},
        {"id": 7, "type": "message", "date": "2024-01-01T18:06:00", "from": "엄마", "from_id": "user42",
         "text": "date_unixtime 없는 옛 내보내기"},
        {"id": 8, "type": "message", "from": "엄마", "text": "날짜 없음"},
    ],
}  # fmt: skip


def _ctx() -> ParseContext:
    return ParseContext("o1", "u1", "result.json", "f" * 64, "unused", "Asia/Seoul")


def _parse(path: Path) -> tuple[pa.Table, pa.Table]:
    info = inspect_export(path)
    assert (info.family, info.source) == ("telegram", "telegram_json")
    batches = list(iter_batches(info, _ctx()))
    return pa.concat_tables([b.messages for b in batches]), pa.concat_tables([b.quarantine for b in batches])


def test_one_chat_parses_to_the_rows_worked_out_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(ONE_CHAT, ensure_ascii=False, indent=1), encoding="utf-8")
    messages, quarantine = _parse(path)
    rows = [(r["ts"], r["speaker"], r["text"], r["kind"]) for r in messages.to_pylist()]
    assert rows == [
        (datetime(2024, 1, 1, 0, 0, tzinfo=UTC), None, "엄마 phone call", "call"),
        (datetime(2024, 1, 1, 0, 1, tzinfo=UTC), "엄마", "새해 복 많이 받아", "text"),
        (datetime(2024, 1, 1, 0, 2, tzinfo=UTC), "민수", "이거 봐요 https://example.org 재밌어요", "text"),
        (datetime(2024, 1, 1, 0, 3, tzinfo=UTC), "엄마", "[photo]", "photo"),
        (datetime(2024, 1, 1, 0, 4, tzinfo=UTC), "엄마", "[voice]", "voice"),
        (datetime(2024, 1, 1, 0, 5, tzinfo=UTC), "민수", "[emoticon 😀]", "emoticon"),
        (
            datetime(2024, 1, 1, 9, 6, tzinfo=UTC),
            "엄마",
            "date_unixtime 없는 옛 내보내기",
            "text",
        ),  # read in Seoul
    ]
    (bad,) = quarantine.to_pylist()
    assert bad["reason"] == "no date" and "날짜 없음" in bad["raw"]
    assert len(set(messages["conversation_id"].to_pylist())) == 1


def test_a_deleted_account_speaks_by_a_stable_handle_not_its_id(tmp_path: Path) -> None:
    # Telegram writes a deleted account's name as null beside its `from_id`; its chat's name too.
    deleted = {"name": None, "type": "personal_chat", "id": 4242, "messages": [
        {"id": i, "type": "message", "date": f"2024-01-01T09:0{i}:00", "date_unixtime": str(1704067200 + 60 * i),
         "from": who, "from_id": from_id, "text": text}
        for i, (who, from_id, text) in enumerate([
            (None, "user42", "밥은 먹었니"), ("민수", "user7", "네 먹었어요"), (None, "user42", "그래 다행이다"),
            (None, "user43", "나도 있다"), (None, None, "누구지"),
        ])
    ]}  # fmt: skip
    path = tmp_path / "result.json"
    path.write_text(json.dumps(deleted, ensure_ascii=False), encoding="utf-8")
    messages, quarantine = _parse(path)
    speakers = messages["speaker"].to_pylist()
    assert speakers[1] == "민수" and speakers[0] == speakers[2] != speakers[3]
    assert speakers[0].startswith("삭제된 계정 ") and not any("user4" in s for s in speakers)
    (bad,) = quarantine.to_pylist()
    assert bad["reason"] == "no sender" and "누구지" in bad["raw"]
    # The typed reader and the plain one agree (the handle needs a second pass in the typed one).
    typed = columns.read(path.read_bytes(), "o1", "Asia/Seoul").speakers
    assert isinstance(typed, pa.Array) and typed.to_pylist() == speakers


def test_a_whole_account_export_is_one_conversation_per_chat(tmp_path: Path) -> None:
    other = {"name": "아빠", "type": "personal_chat", "id": 77, "messages": [
        {"id": 1, "type": "message", "date": "2024-02-01T10:00:00", "date_unixtime": "1706749200",
         "from": "아빠", "from_id": "user77", "text": "잘 지내냐"}]}  # fmt: skip
    account = {
        "about": "Here is the data you requested.",
        "personal_information": {"user_id": 7, "first_name": "민수"},
        "chats": {"about": "This is the list of all your chats.", "list": [ONE_CHAT, other]},
    }
    path = tmp_path / "result.json"
    path.write_text(json.dumps(account, ensure_ascii=False), encoding="utf-8")
    messages, _ = _parse(path)
    threads = messages["conversation_id"].to_pylist()
    assert len(set(threads)) == 2 and threads[-1] != threads[0]
    assert messages["text"].to_pylist()[-1] == "잘 지내냐"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"personal_information": {}, "chats": {"list": [', "not valid Telegram JSON"),
        ("[1, 2, 3]", "not a recognised"),
    ],
)
def test_bad_telegram_input_fails_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "result.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        info = inspect_export(path)
        list(iter_batches(info, _ctx()))


def test_a_telegram_chat_is_ingested_and_builds_a_persona_dataset(tmp_path: Path) -> None:
    from infra.settings import Settings
    from infra.storage import open_storage
    from tasks.datasets.build import DatasetOptions, build_dataset
    from tasks.ingest.uploads import ingest_export

    messages = []
    for i in range(160):
        stamp = 1704067200 + i * (60 if i % 12 else 21_600)
        who = "엄마" if i % 2 == 0 else "민수"
        text = f"밥은 챙겨 먹었니 {i}" if who == "엄마" else f"네 먹었어요 {i}"
        messages.append({"id": i, "type": "message", "date_unixtime": str(stamp), "date": "2024-01-01T00:00:00",
                         "from": who, "text": text})  # fmt: skip
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"name": "엄마", "type": "personal_chat", "id": 1, "messages": messages}),
                    encoding="utf-8")  # fmt: skip
    storage = open_storage(f"file://{tmp_path}/lake")
    (chat,) = ingest_export(path, "tg", storage, Settings()).files
    assert (chat.source, chat.messages, chat.by_speaker) == ("telegram_json", 160, {"엄마": 80, "민수": 80})
    assert build_dataset(storage, "tg", "엄마", options=DatasetOptions(min_pairs=5)).version == 1


def test_a_zipped_export_folder_is_read_and_its_other_json_skipped_with_a_reason(tmp_path: Path) -> None:
    import zipfile

    from infra.settings import Settings
    from infra.storage import open_storage
    from tasks.ingest.uploads import ingest_export

    path = tmp_path / "Telegram Desktop.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ChatExport_2024-01-03/result.json", json.dumps(ONE_CHAT, ensure_ascii=False))
        archive.writestr("ChatExport_2024-01-03/photos/photo_1@01-01-2024_09-03-00.jpg", b"\xff\xd8\xff")
        archive.writestr("ChatExport_2024-01-03/css/settings.json", json.dumps({"theme": "night"}))
    storage = open_storage(f"file://{tmp_path}/lake")
    summary = ingest_export(path, "tgz", storage, Settings())
    (chat,) = summary.files
    assert chat.source == "telegram_json" and chat.messages == 7 and summary.media == 1
    assert summary.quarantined == 2  # the message without a date, and the settings file with its reason


# The typed, column-wise reader (parsers/telegram/columns.py) against the plain one (`plain_rows`, a
# `json.loads` and a loop over messages), on generated exports: the typed reader either declines
# (`ShapeError`) or gives the same batches, rejections included; a well-shaped export it reads.


_TRICKY = ["", "엄마", 'a"b', "a\\b", "line\nbreak", "😀", "\u2028", "\x00", "\x7f", "é", "tab\there", " "]
_STRINGS = st.sampled_from(_TRICKY) | st.text(max_size=6)
_FINITE, _JSON = json_values(_STRINGS)
_UNIX = st.sampled_from(
    ["1704067200", "1704067260", "170406720", "0", "", " 12", "1_0", "nan", "1.5", "-5", "0017"]
)
_DATES = st.sampled_from(
    ["2024-01-01T09:00:00", "2024-03-31T02:30:00", "20240101", "bad", "2024-01-01T09:00:00+09:00"]
)
_ENTITY = st.fixed_dictionaries({"type": st.sampled_from(["link", "bold", "plain"]), "text": _STRINGS})
_WELL_SHAPED = {
    "id": st.integers(0, 10**6),
    "type": st.sampled_from(["message", "message", "service"]),
    "date": _DATES,
    "date_unixtime": _UNIX | st.none(),
    "from": _STRINGS | st.none(),
    "from_id": _STRINGS,
    "text": _STRINGS | st.lists(_STRINGS | _ENTITY | st.none(), max_size=3) | st.none(),
    "text_entities": st.lists(_ENTITY, max_size=2),
    "media_type": st.sampled_from([*MEDIA, "other"]),
    "photo": _FINITE,
    "file": _FINITE,
    "location_information": _FINITE,
    "contact_information": _FINITE,
    "action": st.sampled_from(["phone_call", "group_call", "pin_message", "join_group_by_link"]) | st.none(),
    "actor": _STRINGS | st.none(),
    "sticker_emoji": st.sampled_from(["😀", ""]) | st.none(),
    "reactions": _FINITE,
}


def _message(odd: bool) -> st.SearchStrategy[Any]:
    fields = {k: (v | _JSON if odd else v) for k, v in _WELL_SHAPED.items()}
    usual = ("id", "type", "date", "date_unixtime", "from", "text")
    picked = st.fixed_dictionaries(
        {k: fields[k] for k in usual}, optional={k: v for k, v in fields.items() if k not in usual}
    )
    if not odd:
        return picked
    return st.one_of(picked, st.dictionaries(st.sampled_from(list(fields)), _JSON, max_size=4), _JSON)


def _export(odd: bool) -> st.SearchStrategy[Any]:
    chat = st.fixed_dictionaries(
        {"name": _STRINGS, "type": st.just("personal_chat"), "messages": st.lists(_message(odd), max_size=8)},
        optional={"id": st.integers(0, 99) | (_JSON if odd else st.none())},
    )
    chat_list = st.fixed_dictionaries({"list": st.lists(chat, max_size=3)})
    account = st.fixed_dictionaries(
        {"personal_information": st.just({}), "chats": chat_list},
        optional={"left_chats": chat_list},  # the chats the owner left
    )
    left_only = st.fixed_dictionaries({"personal_information": st.just({}), "left_chats": chat_list})
    shapes = chat | account | left_only
    return (
        shapes | _JSON | st.dictionaries(st.sampled_from(["chats", "left_chats", "messages", "id"]), _JSON)
        if odd
        else shapes
    )


def _outcome(read: Any) -> Any:
    try:
        found = list(batches(read(), _ctx(), 3))
    except Exception as exc:  # the plain reader's failures are the expected outcome too
        return type(exc).__name__
    # Instants as integers: a `date_unixtime` of "nan" gives one no datetime holds, in both readers.
    stamps = [b.messages.set_column(4, "ts", b.messages["ts"].cast(pa.int64())) for b in found]
    return [(m.to_pylist(), b.quarantine.to_pylist()) for m, b in zip(stamps, found, strict=True)]


def _compare(document: Any, ascii_only: bool, indent: int | None, must_read: bool) -> None:
    data = json.dumps(document, ensure_ascii=ascii_only, indent=indent).encode()
    plain = _outcome(lambda: plain_rows(json.loads(data), _ctx()))
    typed = _outcome(lambda: columns.read(data, "o1", "Asia/Seoul"))
    if typed == "ShapeError":
        assert not must_read, "a well-shaped export must be read column-wise"
    else:
        assert typed == plain


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # "nan" seconds, in both
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_export(odd=True), st.booleans(), st.sampled_from([None, 1]))
def test_the_typed_reader_equals_the_plain_one_or_declines(
    document: Any, ascii_only: bool, indent: int | None
) -> None:
    _compare(document, ascii_only, indent, must_read=False)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # "nan" seconds, in both
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_export(odd=False), st.booleans(), st.sampled_from([None, 1]))
def test_the_typed_reader_reads_a_well_shaped_export_as_the_plain_one(
    document: Any, ascii_only: bool, indent: int | None
) -> None:
    _compare(document, ascii_only, indent, must_read=True)


def test_the_typed_reader_declines_bytes_json_loads_would_refuse(tmp_path: Path) -> None:
    valid = json.dumps(ONE_CHAT, ensure_ascii=False).encode()
    bad = valid.replace("새해".encode(), b"\xff\xfe")  # not UTF-8: the whole file is refused, as before
    with pytest.raises(ShapeError):
        columns.read(bad, "o1", "Asia/Seoul")
    path = tmp_path / "result.json"
    path.write_bytes(bad)
    with pytest.raises(InputError, match="not valid Telegram JSON"):
        list(iter_batches(inspect_export(path), _ctx()))
