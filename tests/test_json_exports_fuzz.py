"""Any JSON where a Telegram or Messenger export has a field: it parses, or fails in one line.

The typed-vs-plain tests (test_telegram.py, test_messenger.py) accept any exception as long as both
readers raise it; these ask more of the reader a user meets (`inspect_export` + `iter_batches`):
a field of an unexpected JSON type (a number as a sender, an object as a text, a list as a media
type) ends as a row, a quarantined record with its reason, or an `InputError`, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.base import ParseContext
from parsers.errors import InputError
from parsers.exports import inspect_export, iter_batches
from tests.json_support import json_values

_STRINGS = st.sampled_from(["", "엄마", "Mom", "a\\b", "😀", "\x00", "é"]) | st.text(max_size=4)
_FINITE, _JSON = json_values(_STRINGS)

_TELEGRAM_FIELDS = (
    "id", "type", "date", "date_unixtime", "from", "from_id", "text", "text_entities", "media_type",
    "photo", "file", "location_information", "contact_information", "action", "actor", "sticker_emoji",
)  # fmt: skip
_MESSENGER_FIELDS = (
    "sender_name", "timestamp_ms", "content", "type", "call_duration", "is_unsent", "photos", "videos",
    "gifs", "audio_files", "sticker", "files", "share", "reactions",
)  # fmt: skip
_E2EE_FIELDS = ("senderName", "timestamp", "text", "type", "isUnsent", "media", "reactions")


def _usual(kind: str) -> dict[str, Any]:
    """One well-formed message of each shape, whose fields the cases then replace."""
    if kind == "telegram":
        return {"id": 1, "type": "message", "date": "2024-01-01T09:00:00", "date_unixtime": "1704067200",
                "from": "엄마", "from_id": "user1", "text": "밥은 먹었니"}  # fmt: skip
    if kind == "messenger":
        return {"sender_name": "Mom", "timestamp_ms": 1704067200000, "content": "hi", "type": "Generic"}
    return {"senderName": "Mom", "timestamp": 1704067200000, "text": "hi", "type": "Generic", "media": []}


def _messages(kind: str, fields: tuple[str, ...]) -> st.SearchStrategy[list[Any]]:
    odd = st.fixed_dictionaries({}, optional={k: _JSON for k in fields}).map(lambda f: {**_usual(kind), **f})
    return st.lists(odd | _JSON, min_size=1, max_size=6).map(lambda m: [_usual(kind), *m])


def _document(kind: str, messages: list[Any], top: dict[str, Any]) -> dict[str, Any]:
    if kind == "telegram":
        return {"name": "엄마", "type": "personal_chat", "id": 1, **top, "messages": messages}
    if kind == "messenger":
        return {"participants": [{"name": "Mom"}], "title": "Mom", **top, "messages": messages}
    return {"participants": ["Mom", "Minsu"], "threadName": "Mom", **top, "messages": messages}


def _read(path: Path, fmt: str) -> None:
    try:
        info = inspect_export(path, forced_format=fmt)
        ctx = ParseContext("o1", "u1", path.name, info.sha256, info.conversation_id, "Asia/Seoul")
        for batch in iter_batches(info, ctx):
            assert batch.messages.num_rows + batch.quarantine.num_rows >= 0
    except InputError as exc:
        assert "\n" not in str(exc)


_TOP = {
    "telegram": st.fixed_dictionaries({}, optional={"name": _JSON, "id": _JSON}),
    "messenger": st.fixed_dictionaries(
        {}, optional={"title": _JSON, "participants": _JSON, "thread_path": _JSON}
    ),
    "e2ee": st.fixed_dictionaries({}, optional={"threadName": _JSON, "participants": _JSON}),
}
_FIELDS = {"telegram": _TELEGRAM_FIELDS, "messenger": _MESSENGER_FIELDS, "e2ee": _E2EE_FIELDS}


@pytest.mark.parametrize("kind", ["telegram", "messenger", "e2ee"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), ascii_only=st.booleans())
def test_any_json_in_any_field_parses_or_fails_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, kind: str, data: st.DataObject, ascii_only: bool
) -> None:
    messages = data.draw(_messages(kind, _FIELDS[kind]))
    document = _document(kind, messages, data.draw(_TOP[kind]))
    path = tmp_path_factory.getbasetemp() / f"{kind}.json"
    path.write_text(json.dumps(document, ensure_ascii=ascii_only), encoding="utf-8")
    _read(path, "telegram" if kind == "telegram" else "messenger")


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("telegram", "from", 123),
        ("telegram", "text", {"a": 1}),
        ("telegram", "text", [5, None, {"text": 7}]),
        ("telegram", "media_type", ["sticker"]),
        ("telegram", "actor", 5),
        ("messenger", "sender_name", 5),
        ("messenger", "share", "x"),
        ("messenger", "content", ["a"]),
        ("e2ee", "media", [{"uri": 5}, "x"]),
        ("e2ee", "senderName", {"a": 1}),
    ],
)
def test_a_field_of_an_unexpected_type_parses_or_fails_in_one_line(
    tmp_path: Path, kind: str, field: str, value: Any
) -> None:
    message = {**_usual(kind), field: value}
    if kind == "telegram" and field == "actor":
        message["type"] = "service"
    path = tmp_path / "export.json"
    path.write_text(json.dumps(_document(kind, [_usual(kind), message], {})), encoding="utf-8")
    _read(path, "telegram" if kind == "telegram" else "messenger")
