"""Facebook Messenger and Instagram `message_*.json` parts, written by hand from the exports' shape
(the apps' help pages, public parsers' code and issues; no other project's fixtures).
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
from parsers.exports import inspect_export, iter_batches
from parsers.messenger import columns
from parsers.messenger.export import read_plain, repair
from parsers.messenger.rows import batch, conversation_id
from parsers.typed_json import ShapeError
from tests.json_support import json_values


def _mojibake(text: str) -> str:
    """What the exports write: each UTF-8 byte of the text as one latin-1 character."""
    return text.encode("utf-8").decode("latin-1")


def _ms(day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(2024, 1, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def _part(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "participants": [{"name": _mojibake("엄마")}, {"name": "Minsu"}],
        "messages": messages,
        "title": _mojibake("엄마"),
        "is_still_participant": True,
        "thread_path": "inbox/mom_1234567890",
        "magic_words": [],
    }


def _ctx() -> ParseContext:
    return ParseContext("o1", "u1", "message_1.json", "f" * 64, "unused", "Asia/Seoul")


def _parse(path: Path) -> tuple[pa.Table, pa.Table]:
    info = inspect_export(path)
    assert (info.family, info.source) == ("messenger", "messenger_json")
    (batch,) = list(iter_batches(info, _ctx()))
    return batch.messages, batch.quarantine


def test_the_mojibake_is_repaired_and_real_text_left_alone() -> None:
    assert repair("J\u00e2\u009d\u00a4\u00ef\u00b8\u008f") == "J❤️"
    assert repair(_mojibake("사랑해 ❤️")) == "사랑해 ❤️"
    assert repair("café") == "café"  # latin-1 that is not UTF-8 bytes: as written
    assert repair("이미 한글") == "이미 한글"


def test_a_thread_parses_oldest_first_to_the_rows_worked_out_by_hand(tmp_path: Path) -> None:
    newest_first = [
        {"sender_name": "Minsu", "timestamp_ms": _ms(2, 9), "content": "https://example.org/a",
         "share": {"link": "https://example.org/a"}, "type": "Share"},
        {"sender_name": _mojibake("엄마"), "timestamp_ms": _ms(2, 8), "call_duration": 42, "type": "Call"},
        {"sender_name": _mojibake("엄마"), "timestamp_ms": _ms(1, 10),
         "photos": [{"uri": "messages/inbox/mom/photos/1.jpg", "creation_timestamp": 1704103200}],
         "type": "Generic"},
        {"sender_name": "Minsu", "timestamp_ms": _ms(1, 9, 5), "content": _mojibake("네 엄마 ❤️"),
         "reactions": [{"reaction": _mojibake("❤"), "actor": _mojibake("엄마")}], "type": "Generic"},
        {"timestamp_ms": _ms(1, 9, 1), "content": "no sender", "type": "Generic"},
        {"sender_name": _mojibake("엄마"), "timestamp_ms": _ms(1, 9), "content": _mojibake("밥은 먹었니?"),
         "type": "Generic"},
    ]  # fmt: skip
    path = tmp_path / "message_1.json"
    path.write_text(json.dumps(_part(newest_first)), encoding="utf-8")  # ASCII escapes, as the apps write
    messages, quarantine = _parse(path)
    rows = [(r["ts"], r["speaker"], r["text"], r["kind"]) for r in messages.to_pylist()]
    assert rows == [
        (datetime(2024, 1, 1, 9, 0, tzinfo=UTC), "엄마", "밥은 먹었니?", "text"),
        (datetime(2024, 1, 1, 9, 5, tzinfo=UTC), "Minsu", "네 엄마 ❤️", "text"),
        (datetime(2024, 1, 1, 10, 0, tzinfo=UTC), "엄마", "[photo]", "photo"),
        (datetime(2024, 1, 2, 8, 0, tzinfo=UTC), "엄마", "[call 42 s]", "call"),
        (datetime(2024, 1, 2, 9, 0, tzinfo=UTC), "Minsu", "https://example.org/a", "text"),
    ]
    (bad,) = quarantine.to_pylist()
    assert bad["reason"] == "no sender"


def test_an_unsent_message_is_deleted_not_text(tmp_path: Path) -> None:
    newest_first = [
        {"sender_name": "Minsu", "timestamp_ms": _ms(1, 10), "is_unsent": True, "type": "Generic"},
        {"sender_name": "Minsu", "timestamp_ms": _ms(1, 9), "content": "hi", "is_unsent": False},
    ]
    path = tmp_path / "message_1.json"
    path.write_text(json.dumps(_part(newest_first)), encoding="utf-8")
    messages, _ = _parse(path)
    assert [(r["text"], r["kind"]) for r in messages.to_pylist()] == [
        ("hi", "text"),
        ("[deleted]", "deleted"),
    ]


# The end-to-end-encrypted chats' export (messenger.com's "secure storage" download), one file per
# chat, written by hand from what public importers' code shows of it: names as strings, camelCase
# fields, oldest first, media as `{"uri"}` under one `media` list.
_E2EE = {
    "participants": ["엄마", "Minsu Kim"],
    "threadName": "엄마",
    "messages": [
        {"senderName": "엄마", "text": "밥은 먹었니?\n춥다", "timestamp": _ms(3, 9), "type": "Generic",
         "isUnsent": False, "media": [], "reactions": [{"actor": "Minsu Kim", "reaction": "❤"}]},
        {"senderName": "Minsu Kim", "text": "", "timestamp": _ms(3, 9, 1), "type": "Generic",
         "isUnsent": False, "media": [{"uri": "./media/IMG_0001.JPG"}], "reactions": []},
        {"senderName": "엄마", "text": "", "timestamp": _ms(3, 9, 2), "type": "Generic",
         "isUnsent": False, "media": [{"uri": "./media/audioclip.m4a"}], "reactions": []},
        {"senderName": "Minsu Kim", "text": "", "timestamp": _ms(3, 9, 3), "type": "Generic",
         "isUnsent": True, "media": [], "reactions": []},
        {"text": "누구지", "timestamp": _ms(3, 9, 4), "type": "Generic", "isUnsent": False, "media": []},
        {"senderName": "엄마", "text": _mojibake("사랑해 ❤️"), "timestamp": _ms(3, 9, 5), "type": "Generic",
         "isUnsent": False, "media": [{"uri": "./media/scan.pdf"}], "reactions": []},
    ],
}  # fmt: skip


@pytest.mark.parametrize("ascii_only", [False, True])
def test_an_end_to_end_encrypted_chat_reads_to_the_rows_worked_out_by_hand(
    tmp_path: Path, ascii_only: bool
) -> None:
    path = tmp_path / "엄마_1.json"
    path.write_text(json.dumps(_E2EE, ensure_ascii=ascii_only, indent=2), encoding="utf-8")
    messages, quarantine = _parse(path)
    rows = [(r["ts"], r["speaker"], r["text"], r["kind"]) for r in messages.to_pylist()]
    assert rows == [
        (datetime(2024, 1, 3, 9, 0, tzinfo=UTC), "엄마", "밥은 먹었니?\n춥다", "text"),
        (datetime(2024, 1, 3, 9, 1, tzinfo=UTC), "Minsu Kim", "[photo]", "photo"),
        (datetime(2024, 1, 3, 9, 2, tzinfo=UTC), "엄마", "[voice]", "voice"),
        (datetime(2024, 1, 3, 9, 3, tzinfo=UTC), "Minsu Kim", "[deleted]", "deleted"),
        (datetime(2024, 1, 3, 9, 5, tzinfo=UTC), "엄마", "사랑해 ❤️", "text"),
    ]
    assert messages["line_no"].to_pylist() == [1, 2, 3, 4, 6]
    (bad,) = quarantine.to_pylist()
    assert bad["reason"] == "no sender" and "누구지" in bad["raw"]
    # One chat, one conversation, the same as its title and participants give in the classic shape.
    classic = {"participants": [{"name": "엄마"}, {"name": "Minsu Kim"}], "title": "엄마"}
    assert set(messages["conversation_id"].to_pylist()) == {conversation_id("o1", classic)}
    with pytest.raises(ShapeError):  # the column-wise reader leaves this shape to the plain one
        columns.read(path, "o1")


def test_an_end_to_end_encrypted_chat_in_a_zip_restores_its_speaker(tmp_path: Path) -> None:
    import zipfile

    from infra.settings import Settings
    from infra.storage import open_storage
    from tasks.ingest.lake import load_message_table
    from tasks.ingest.uploads import ingest_export

    upload = tmp_path / "messages.zip"
    with zipfile.ZipFile(upload, "w") as zf:
        zf.writestr("messages/엄마_1.json", json.dumps(_E2EE, indent=2))
        zf.writestr("messages/media/IMG_0001.JPG", b"\xff\xd8\xff")
    storage = open_storage(f"file://{tmp_path}/lake")
    ingest_export(upload, "fb", storage, Settings())
    table = load_message_table(storage, "fb")
    assert table.num_rows == 5 and set(table["speaker"].to_pylist()) == {"엄마", "Minsu Kim"}


def test_two_parts_of_one_thread_are_one_conversation_in_the_lake(tmp_path: Path) -> None:
    from infra.settings import Settings
    from infra.storage import open_storage
    from tasks.datasets.build import DatasetOptions, build_dataset
    from tasks.ingest.lake import load_message_table
    from tasks.ingest.uploads import ingest_export

    storage = open_storage(f"file://{tmp_path}/lake")
    for part, start in (("message_2.json", 0), ("message_1.json", 100)):  # message_1 holds the newest
        messages = []
        for i in range(start, start + 100):
            who = _mojibake("엄마") if i % 2 == 0 else "Minsu"
            text = _mojibake(f"잘 지내니 밥은 먹었고 {i}" if i % 2 == 0 else f"네 잘 지내요 {i}")
            stamp = _ms(1, 0) + i * (60_000 if i % 10 else 6 * 3_600_000)
            messages.append({"sender_name": who, "timestamp_ms": stamp, "content": text, "type": "Generic"})
        path = tmp_path / part
        path.write_text(json.dumps(_part(list(reversed(messages)))), encoding="utf-8")
        ingest_export(path, "fb", storage, Settings())
    table = load_message_table(storage, "fb")
    assert table.num_rows == 200 and len(set(table["conversation_id"].to_pylist())) == 1
    assert set(table["speaker"].to_pylist()) == {"엄마", "Minsu"}
    assert build_dataset(storage, "fb", "엄마", options=DatasetOptions(min_pairs=5)).version == 1


# The typed, column-wise reader (parsers/messenger/columns.py) against the plain one (`plain_rows`,
# a `json.loads` and a loop over messages), on generated parts: the typed reader either declines
# (`ShapeError`) or gives the same batch, rejections included; a well-shaped part it reads.


_TRICKY = ["", "엄마", "café", 'a"b', "a\\b", "line\nbreak", "😀", "\x00", "\x7f", "\x80", " "]
_REAL = st.sampled_from(_TRICKY) | st.text(max_size=5)
_STRINGS = _REAL.map(_mojibake) | _REAL | st.sampled_from(["Ã©", "\xc3", "\xe2\x9d"])  # mojibake, or not
_FINITE, _JSON = json_values(_STRINGS)
_MEDIA = st.lists(st.fixed_dictionaries({"uri": _STRINGS}), max_size=2) | st.none()
_WELL_SHAPED = {
    "sender_name": _STRINGS | st.none(),
    "timestamp_ms": st.integers(0, 2**62) | st.none(),
    "content": _STRINGS | st.none(),
    "type": st.sampled_from(["Generic", "Share", "Call", "Subscribe", "Unsubscribe"]) | st.none(),
    "call_duration": st.integers(0, 10**4) | st.none(),
    "photos": _MEDIA,
    "videos": _MEDIA,
    "gifs": _MEDIA,
    "audio_files": _MEDIA,
    "sticker": st.fixed_dictionaries({"uri": _STRINGS}) | st.just({}) | st.none(),
    "files": _MEDIA,
    "share": st.fixed_dictionaries({}, optional={"link": _STRINGS | st.none(), "share_text": _STRINGS})
    | st.none(),
    "reactions": st.lists(st.fixed_dictionaries({"reaction": _STRINGS, "actor": _STRINGS}), max_size=2),
    "is_geoblocked_for_viewer": st.booleans(),
}


def _message(odd: bool) -> st.SearchStrategy[Any]:
    fields = {k: (v | _JSON if odd else v) for k, v in _WELL_SHAPED.items()}
    usual = ("sender_name", "timestamp_ms", "content")
    picked = st.fixed_dictionaries(
        {k: fields[k] for k in usual}, optional={k: v for k, v in fields.items() if k not in usual}
    )
    if not odd:
        return picked
    return st.one_of(picked, st.dictionaries(st.sampled_from(list(fields)), _JSON, max_size=4), _JSON)


def _thread(odd: bool) -> st.SearchStrategy[Any]:
    participant = st.fixed_dictionaries({}, optional={"name": _STRINGS})
    optional = {
        "participants": st.lists(participant | (_JSON if odd else participant), max_size=3),
        "title": _STRINGS | (_JSON if odd else st.none()),
        "thread_path": st.sampled_from(["inbox/mom_1", "", _mojibake("inbox/엄마_1")])
        | (_JSON if odd else st.none()),
    }
    thread = st.fixed_dictionaries({"messages": st.lists(_message(odd), max_size=8)}, optional=optional)
    return thread | _JSON | st.dictionaries(st.sampled_from(["messages", "title"]), _JSON) if odd else thread


def _outcome(read: Any) -> Any:
    try:
        rows, conversation = read()
        found = batch(rows, _ctx(), conversation)
    except Exception as exc:  # the plain reader's failures are the expected outcome too
        return type(exc).__name__
    # Instants as integers: a generated time may lie past what a datetime holds, in both readers.
    stamps = found.messages.set_column(4, "ts", found.messages["ts"].cast(pa.int64()))
    return stamps.to_pylist(), found.quarantine.to_pylist()


def _plain(data: bytes) -> tuple[Any, str]:
    return read_plain(data, "o1", "message_1.json")


def _compare(folder: Path, thread: Any, ascii_only: bool, must_read: bool) -> None:
    data = json.dumps(thread, ensure_ascii=ascii_only).encode()
    (folder / "message_1.json").write_bytes(data)
    plain = _outcome(lambda: _plain(data))
    typed = _outcome(lambda: columns.read(folder / "message_1.json", "o1"))
    if typed == "ShapeError":
        assert not must_read, "a well-shaped part must be read column-wise"
    else:
        assert typed == plain


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_thread(odd=True), st.booleans())
def test_the_typed_reader_equals_the_plain_one_or_declines(
    tmp_path_factory: pytest.TempPathFactory, thread: Any, ascii_only: bool
) -> None:
    _compare(tmp_path_factory.getbasetemp(), thread, ascii_only, must_read=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_thread(odd=False), st.booleans())
def test_the_typed_reader_reads_a_well_shaped_part_as_the_plain_one(
    tmp_path_factory: pytest.TempPathFactory, thread: Any, ascii_only: bool
) -> None:
    _compare(tmp_path_factory.getbasetemp(), thread, ascii_only, must_read=True)


def test_the_column_repair_equals_repair_string_by_string() -> None:
    values = [_mojibake("엄마 ❤️"), "café", "이미 한글", "", "plain", "\xc3", _mojibake("😀") + "\xc3"]
    assert columns.repaired(values).to_pylist() == [repair(v) for v in values]
    assert columns.repaired(values[1:2] + values[4:5]).to_pylist() == ["café", "plain"]
    assert columns.repaired([]).to_pylist() == []


def test_the_typed_reader_declines_bytes_json_loads_would_refuse(tmp_path: Path) -> None:
    data = json.dumps(_part([{"sender_name": "x", "timestamp_ms": 1, "content": "y"}])).encode()
    (tmp_path / "message_1.json").write_bytes(data.replace(b'"y"', b'"\xff"'))
    with pytest.raises(ShapeError):
        columns.read(tmp_path / "message_1.json", "o1")
