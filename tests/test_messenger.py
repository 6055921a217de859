"""Facebook Messenger and Instagram `message_*.json` parts, written by hand from the exports' shape
(the apps' help pages, public parsers' code and issues; no other project's fixtures).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from parsers.base import ParseContext
from parsers.exports import inspect_export, iter_batches
from parsers.messenger.export import repair


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
