"""LINE chat histories, written by hand from LINE's documented layout and what public parsers show
of real exports (no other project's fixtures): each expected row worked out by hand.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.base import ParseContext
from parsers.exports import inspect_export, iter_batches

Row = tuple[str, str | None, str, str]

CASES: dict[str, tuple[str, list[Row]]] = {
    "pc_en": (
        "[LINE] Chat history with Mom\r\n"
        "Saved on: 2024/01/03 09:00\r\n"
        "\r\n"
        "2024/01/01(Mon)\r\n"
        "09:00\tMom\tHappy new year\r\n"
        '09:01\tMinsu\t"Thank you\r\n'
        'see you ""soon""\r\n'
        'mom"\r\n'
        "09:02\tMom\t[Sticker]\r\n"
        "09:03\tMinsu unsent a message.\r\n"
        "2024/01/02(Tue)\r\n"
        "21:30\tMom\t[Photo]\r\n"
        "21:31\tMom\t☎ Call time 0:42\r\n",
        [
            ("2024-01-01T09:00", "Mom", "Happy new year", "text"),
            ("2024-01-01T09:01", "Minsu", 'Thank you\nsee you "soon"\nmom', "text"),
            ("2024-01-01T09:02", "Mom", "[Sticker]", "emoticon"),
            ("2024-01-01T09:03", None, "Minsu unsent a message.", "system"),
            ("2024-01-02T21:30", "Mom", "[Photo]", "photo"),
            ("2024-01-02T21:31", "Mom", "☎ Call time 0:42", "call"),
        ],
    ),
    "mobile_en_12h": (
        "[LINE] Chat history with Dad\n"
        "Saved on: 1/3/2024, 09:00\n"
        "\n"
        "Mon, 1/1/2024\n"
        "AM 9:05\tDad\tGood morning\n"
        "9:06 PM\tJun\tGood night\n",
        [
            ("2024-01-01T09:05", "Dad", "Good morning", "text"),
            ("2024-01-01T21:06", "Jun", "Good night", "text"),
        ],
    ),
    "ja": (
        "[LINE] 母とのトーク履歴\n"
        "保存日時：2024/01/03 09:00\n"
        "\n"
        "2024/01/01(月)\n"
        "午後3:04\t母\tあけましておめでとう\n"
        "15:05\t母\t[スタンプ]\n",
        [
            ("2024-01-01T15:04", "母", "あけましておめでとう", "text"),
            ("2024-01-01T15:05", "母", "[スタンプ]", "emoticon"),
        ],
    ),
    "ko": (
        "[LINE] 엄마님과의 대화\n"
        "저장한 날짜: 2024. 1. 3. 09:00\n"
        "\n"
        "2024. 1. 1. 월요일\n"
        "오후 3:04\t엄마\t새해 복 많이 받아\n"
        "오후 3:05\t민수\t[사진]\n",
        [
            ("2024-01-01T15:04", "엄마", "새해 복 많이 받아", "text"),
            ("2024-01-01T15:05", "민수", "[사진]", "photo"),
        ],
    ),
}


def _ctx() -> ParseContext:
    return ParseContext("o1", "u1", "line.txt", "f" * 64, "unused", "Asia/Seoul")


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_layout_parses_to_the_rows_worked_out_by_hand(name: str, tmp_path: Path) -> None:
    text, expected = CASES[name]
    path = tmp_path / "chat.txt"
    path.write_bytes(text.encode("utf-8"))
    info = inspect_export(path)
    assert (info.family, info.source) == ("line", "line_txt")
    batches = list(iter_batches(info, _ctx()))
    messages = pa.concat_tables([b.messages for b in batches])
    zone = ZoneInfo("Asia/Seoul")
    rows = [(r["ts"].astimezone(zone).replace(tzinfo=None), r["speaker"], r["text"], r["kind"])
            for r in messages.to_pylist()]  # fmt: skip
    assert rows == [(datetime.fromisoformat(t), *rest) for t, *rest in expected]
    assert sum(b.quarantine.num_rows for b in batches) == 0
    assert info.conversation_id.startswith("line-")  # the title names the room


def test_a_line_before_the_first_day_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    path.write_text("[LINE] Chat history with Mom\nSaved on: x\n\n09:00\tMom\tlost day\n2024/01/01(Mon)\n"
                    "09:01\tMom\tkept\n", encoding="utf-8")  # fmt: skip
    (batch,) = list(iter_batches(inspect_export(path), _ctx()))
    assert batch.messages["text"].to_pylist() == ["kept"]
    assert batch.quarantine.to_pylist()[0]["reason"] == "a line before the first day"


_DAYS = ["2024/01/01(Mon)", "Tue, 1/2/2024", "2024.01.03 Wednesday", "2024. 1. 4. (목)", "2024/01/05(金)",
         "2024/02/30(Fri)", "13/45/2024"]  # fmt: skip
_CLOCKS = ["09:05", "AM 9:05", "9:05 PM", "오후 3:04", "午後3:04", "pm 12:30", "25:00", "9:5", " 10:10 "]
_WORDS = ['"', '""', "hi", "09:0", "2024/01/0", "오후 3", "엄마", "see you", "[Sticker]", "[사진]", "☎ Call time 0:42", "09:00\tX\ty", "2024/03/01(Fri)",
          "\t", "[LINE] x", " ", ""]  # fmt: skip
_TEXT = st.lists(st.sampled_from(_WORDS), max_size=4).map("".join)
_LINE_OF = st.one_of(
    st.sampled_from(_DAYS),
    st.builds(
        lambda c, n, t: f"{c}\t{n}\t{t}",
        st.sampled_from(_CLOCKS),
        st.sampled_from(["Mom", "민수", ""]),
        _TEXT,
    ),
    st.builds(lambda c, t: f"{c}\t{t}", st.sampled_from(_CLOCKS), _TEXT),
    _TEXT,
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(_LINE_OF, max_size=25),
    crlf=st.booleans(),
    chunk=st.sampled_from([16, 64, 1 << 20]),
    unterminated=st.booleans(),
)
def test_the_vectorised_reader_gives_the_per_line_readers_rows(
    body: list[str], crlf: bool, chunk: int, unterminated: bool
) -> None:
    """Differential: quotes over day and message lines, loose lines, bad clocks and days, any chunking."""
    from parsers.line.export import parse_chunks
    from parsers.textlines import text_chunks
    from tests.line_reference import reference_rows

    end = "\r\n" if crlf else "\n"
    lines = [f"{x}{end}" for x in ["[LINE] Chat history with Mom", "Saved on: 2024/01/03 09:00", "", *body]]
    if unterminated:  # the file cut off at its end: a last line without its line end
        lines[-1] = lines[-1].rstrip("\r\n")
    expected, rejected = reference_rows(lines)
    batches = list(parse_chunks(text_chunks(lines, chunk_bytes=chunk), _ctx()))
    got = [r for b in batches for r in b.messages.to_pylist()]
    epoch = datetime(1970, 1, 1, tzinfo=ZoneInfo("Asia/Seoul"))
    assert [(r["line_no"], int((r["ts"] - epoch).total_seconds()), r["speaker"], r["text"], r["kind"])
            for r in got] == expected  # fmt: skip
    quarantined = [(r["line_no"], r["reason"], r["raw"]) for b in batches for r in b.quarantine.to_pylist()]
    assert quarantined == rejected
