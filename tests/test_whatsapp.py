"""WhatsApp `.txt` exports, written by hand from the format's documentation and what public parsers
show of real exports (no other project's fixtures): each expected row worked out from the rules,
not from the parser's output.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from parsers.base import ParseContext
from parsers.whatsapp.export import detect, parse_lines, sniff

LRM, NNBSP = "\u200e", "\u202f"
#: (local time, speaker, text, kind); `None` speaker: a system line.
Row = tuple[str, str | None, str, str]

CASES: dict[str, tuple[str, str, bool, list[Row]]] = {
    "android_en_us_12h": (
        f"12/31/21, 11:58{NNBSP}PM - Messages and calls are end-to-end encrypted. No one outside of this chat, "
        "not even WhatsApp, can read or listen to them. Tap to learn more.\n"
        f"12/31/21, 11:59{NNBSP}PM - Mom: Happy new year sweetie\n"
        "call me tomorrow\n"
        f"1/13/22, 7:05{NNBSP}AM - Dr: Kim: your results are fine\n"
        f"1/13/22, 7:06{NNBSP}AM - Mom: <Media omitted>\n"
        f"1/13/22, 12:30{NNBSP}PM - Dr: Kim: see you: next week\n"
        f"1/13/22, 12:31{NNBSP}AM - Mom: This message was deleted\n",
        "mdy",
        True,
        [
            ("2021-12-31T23:58", None, "Messages and calls are end-to-end encrypted. No one outside of this chat, "
             "not even WhatsApp, can read or listen to them. Tap to learn more.", "system"),
            ("2021-12-31T23:59", "Mom", "Happy new year sweetie\ncall me tomorrow", "text"),
            ("2022-01-13T07:05", "Dr: Kim", "your results are fine", "text"),
            ("2022-01-13T07:06", "Mom", "<Media omitted>", "file"),
            ("2022-01-13T12:30", "Dr: Kim", "see you: next week", "text"),
            ("2022-01-13T00:31", "Mom", "This message was deleted", "deleted"),
        ],
    ),
    "android_en_gb_24h": (
        "03/02/2022, 21:15 - Grandpa: How are the kids?\n"
        "03/02/2022, 21:16 - Sophie: All good, Anna starts school on 14/03\n"
        "25/02/2022, 08:00 - Grandpa: IMG-20220225-WA0001.jpg (file attached)\n"
        "25/02/2022, 08:01 - Grandpa: PTT-20220225-WA0002.opus (file attached)\n"
        "25/02/2022, 08:02 - Sophie left\n",
        "dmy",
        True,
        [
            ("2022-02-03T21:15", "Grandpa", "How are the kids?", "text"),
            ("2022-02-03T21:16", "Sophie", "All good, Anna starts school on 14/03", "text"),
            ("2022-02-25T08:00", "Grandpa", "IMG-20220225-WA0001.jpg (file attached)", "photo"),
            ("2022-02-25T08:01", "Grandpa", "PTT-20220225-WA0002.opus (file attached)", "voice"),
            ("2022-02-25T08:02", None, "Sophie left", "system"),
        ],
    ),
    "ios_de": (
        f"[31.12.21, 23:59:01] Oma: Frohes neues Jahr!\n"
        f"[01.01.22, 00:00:15] Jonas: {LRM}Bild weggelassen\n"
        f"{LRM}[01.01.22, 00:01:00] Jonas: {LRM}<attached: 00000012-PHOTO-2022-01-01-00-01-00.jpg>\n"
        "[01.01.22, 00:02:00] Oma: Danke: mein Schatz\n",
        "dmy",
        True,  # 31.12.21: 31 can only be a day
        [
            ("2021-12-31T23:59:01", "Oma", "Frohes neues Jahr!", "text"),
            ("2022-01-01T00:00:15", "Jonas", "Bild weggelassen", "photo"),
            ("2022-01-01T00:01:00", "Jonas", "<attached: 00000012-PHOTO-2022-01-01-00-01-00.jpg>", "photo"),
            ("2022-01-01T00:02:00", "Oma", "Danke: mein Schatz", "text"),
        ],
    ),
    "ios_en_us": (
        "[1/2/22, 9:05:10 PM] Dad: Landed safely\n"
        f"[1/2/22, 9:06:00 PM] Dad: {LRM}image omitted\n"
        f"[1/2/22, 9:07:00 PM] Sam: {LRM}audio omitted\n"
        "[1/2/22, 9:08:00 PM] Dad: location: https://maps.google.com/?q=37.56,126.97\n",
        "mdy",
        False,
        [
            ("2022-01-02T21:05:10", "Dad", "Landed safely", "text"),
            ("2022-01-02T21:06:00", "Dad", "image omitted", "photo"),
            ("2022-01-02T21:07:00", "Sam", "audio omitted", "voice"),
            ("2022-01-02T21:08:00", "Dad", "location: https://maps.google.com/?q=37.56,126.97", "location"),
        ],
    ),
    "android_ko": (
        "2023. 12. 30. 오전 12:05 - 엄마: 아직 안 자니\n"
        "2023. 12. 30. 오후 12:00 - 민수: 네 이제 자요\n"
        "내일 봬요\n"
        "2023. 12. 30. 오후 1:30 - 엄마: 삭제된 메시지입니다.\n",
        "ymd",
        True,
        [
            ("2023-12-30T00:05", "엄마", "아직 안 자니", "text"),
            ("2023-12-30T12:00", "민수", "네 이제 자요\n내일 봬요", "text"),
            ("2023-12-30T13:30", "엄마", "삭제된 메시지입니다.", "deleted"),
        ],
    ),
    "ios_ko": (
        "[2023. 12. 30. 오후 3:04:05] 엄마: 밥은 먹었니\n"
        f"[2023. 12. 30. 오후 3:05:00] 엄마: {LRM}이미지 생략됨\n"
        f"[2023. 12. 30. 오후 3:06:00] 민수: {LRM}오디오 생략됨\n"
        f"[2023. 12. 30. 오후 3:07:00] 민수: {LRM}<첨부: 00000012-PHOTO-2023-12-30-15-07-00.jpg>\n"
        f"[2023. 12. 30. 오후 3:08:00] 엄마: {LRM}스티커 생략됨\n",
        "ymd",
        True,
        [
            ("2023-12-30T15:04:05", "엄마", "밥은 먹었니", "text"),
            ("2023-12-30T15:05:00", "엄마", "이미지 생략됨", "photo"),
            ("2023-12-30T15:06:00", "민수", "오디오 생략됨", "voice"),
            ("2023-12-30T15:07:00", "민수", "<첨부: 00000012-PHOTO-2023-12-30-15-07-00.jpg>", "photo"),
            ("2023-12-30T15:08:00", "엄마", "스티커 생략됨", "emoticon"),
        ],
    ),
    "android_es": (
        "31/12/21 23:59 - Abuela: ¡Feliz año!\n"
        "1/1/22 0:01 - Lucía: Igualmente abuela\n",
        "dmy",
        True,
        [
            ("2021-12-31T23:59", "Abuela", "¡Feliz año!", "text"),
            ("2022-01-01T00:01", "Lucía", "Igualmente abuela", "text"),
        ],
    ),
}  # fmt: skip


def _ctx() -> ParseContext:
    return ParseContext("o1", "u1", "chat.txt", "f" * 64, "whatsapp-file-x", "Asia/Seoul")


def _rows(table: pa.Table) -> list[tuple[datetime, str | None, str, str]]:
    zone = ZoneInfo("Asia/Seoul")
    return [
        (r["ts"].astimezone(zone).replace(tzinfo=None), r["speaker"], r["text"], r["kind"])
        for r in table.to_pylist()
    ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_layout_parses_to_the_rows_worked_out_by_hand(name: str) -> None:
    text, order, decided, expected = CASES[name]
    lines = text.splitlines(keepends=True)
    assert sniff(text)
    detection = detect(lines)
    assert detection is not None
    assert (detection.date_order, detection.date_order_decided) == (order, decided)
    batches = list(parse_lines(lines, detection, _ctx()))
    messages = pa.concat_tables([b.messages for b in batches])
    assert _rows(messages) == [(datetime.fromisoformat(t), *rest) for t, *rest in expected]
    assert sum(b.quarantine.num_rows for b in batches) == 0


def test_kakaotalk_and_plain_text_are_not_whatsapp() -> None:
    kakao = "2023년 12월 30일 오전 12:05, 외할머니 : 아직 안 자니\n2023년 12월 30일 오전 12:07, 손녀 : 네\n"
    assert not sniff(kakao) and detect(kakao.splitlines()) is None
    assert not sniff("hello\nworld\n") and detect(["hello", "world"]) is None


def test_a_forced_date_order_wins_and_impossible_dates_are_quarantined_with_the_line() -> None:
    text = "01/02/22, 10:00 - A: one\n02/03/22, 10:00 - B: two\n13/13/22, 10:00 - A: three\n"
    lines = text.splitlines(keepends=True)
    detection = detect(lines, forced_order="mdy")
    assert detection is not None and detection.date_order == "mdy"
    (batch,) = list(parse_lines(lines, detection, _ctx()))
    assert [r["ts"].month for r in batch.messages.to_pylist()] == [1, 2]
    assert batch.quarantine.to_pylist()[0]["raw"] == "13/13/22, 10:00 - A: three"


def test_text_before_the_first_header_is_quarantined_not_lost() -> None:
    lines = ["garbage at the top\n", "12/31/21, 11:59 PM - Mom: hi\n"]
    detection = detect(lines)
    assert detection is not None
    (batch,) = list(parse_lines(lines, detection, _ctx()))
    assert batch.messages.num_rows == 1
    assert batch.quarantine.to_pylist()[0]["reason"] == "text before the first message header"


def _export(path: Path, rounds: int = 120) -> Path:
    """A US-English Android export of Mom and Minsu (12 h clock, narrow spaces before AM/PM)."""
    lines, moment = [], datetime(2023, 1, 5, 8, 0)
    for i in range(rounds):
        moment += timedelta(minutes=1 if i % 10 else 600)
        who, text = (
            ("Mom", f"밥은 먹었니 오늘은 뭐 했어 {i}") if i % 2 == 0 else ("Minsu", f"네 먹었어요 엄마 {i}")
        )
        hour = moment.hour % 12 or 12
        stamp = f"{moment.month}/{moment.day}/{moment:%y}, {hour}:{moment:%M}{NNBSP}{'AM' if moment.hour < 12 else 'PM'}"
        lines.append(f"{stamp} - {who}: {text}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_a_whatsapp_export_is_ingested_and_builds_a_persona_dataset(tmp_path: Path) -> None:
    from infra.settings import Settings
    from infra.storage import open_storage
    from tasks.datasets.build import DatasetOptions, build_dataset
    from tasks.ingest.lake import load_message_table
    from tasks.ingest.uploads import ingest_export

    storage = open_storage(f"file://{tmp_path}/lake")
    summary = ingest_export(_export(tmp_path / "chat.txt"), "wa", storage, Settings())
    (chat,) = summary.files
    assert (chat.format, chat.source, chat.messages, chat.quarantined) == ("whatsapp", "whatsapp_txt", 120, 0)
    assert chat.by_speaker == {"Mom": 60, "Minsu": 60}
    assert chat.conversation_id.startswith("whatsapp-file-")
    table = load_message_table(storage, "wa")
    assert set(table["source"].to_pylist()) == {"whatsapp_txt"}
    dataset = build_dataset(storage, "wa", "Mom", options=DatasetOptions(min_pairs=5))
    assert dataset.version == 1 and dataset.manifest["persona_names"] == ["Mom"]
    again = ingest_export(_export(tmp_path / "chat.txt"), "wa", storage, Settings())
    assert again.resumed  # the same file: the same ids, nothing written twice


def test_bad_whatsapp_like_input_fails_in_one_line(tmp_path: Path) -> None:
    from parsers.errors import InputError
    from parsers.exports import inspect_export

    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\nmilk\n", encoding="utf-8")
    with pytest.raises(
        InputError,
        match="not a recognised chat export",
    ):
        inspect_export(notes)
    forced = tmp_path / "kakao.txt"
    forced.write_text("2023년 12월 30일 오전 12:05, 외할머니 : 아직 안 자니\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a recognised WhatsApp export"):
        inspect_export(forced, forced_format="whatsapp")
    with pytest.raises(InputError, match="unknown date order"):
        inspect_export(_export(tmp_path / "chat.txt", 4), date_order="yyy")
    cut = tmp_path / "cut.txt"  # cut off mid-line: the whole lines parse, the torn one is its text
    cut.write_bytes(_export(tmp_path / "whole.txt", 4).read_bytes()[:-9])
    assert inspect_export(cut).whatsapp is not None


def test_an_unsaved_contact_speaks_as_a_stable_handle_never_the_number() -> None:
    from parsers.base import number_handle

    lines = [
        f"1/13/22, 7:05{NNBSP}AM - +82 10-1234-5678: 안녕하세요\n",
        f"1/13/22, 7:06{NNBSP}AM - Mom: hi\n",
    ]
    detection = detect(lines)
    assert detection is not None
    (batch,) = list(parse_lines(lines, detection, _ctx()))
    speakers = batch.messages["speaker"].to_pylist()
    assert speakers == [number_handle("o1", "+821012345678"), "Mom"]
    assert "1234" not in speakers[0]


_LAYOUTS: dict[str, tuple[Callable[[datetime], str], str]] = {
    # name: (render one header, date order)
    "android_us": (lambda t: f"{t.month}/{t.day}/{t:%y}, {t.hour % 12 or 12}:{t:%M}{NNBSP}{'AM' if t.hour < 12 else 'PM'} - ", "mdy"),
    "android_gb": (lambda t: f"{t:%d/%m/%Y}, {t:%H:%M} - ", "dmy"),
    "ios_de": (lambda t: f"[{t:%d.%m.%y}, {t:%H:%M:%S}] ", "dmy"),
    "android_ko": (lambda t: f"{t.year}. {t.month}. {t.day}. {'오전' if t.hour < 12 else '오후'} {t.hour % 12 or 12}:{t:%M} - ", "ymd"),
}  # fmt: skip
_NAMES = st.sampled_from(["Mom", "엄마", "Dr: Kim", "Anna Maria", "민수 (서울)"])
_LINE_TEXT = (
    st.text(
        st.characters(
            blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\u200e\u200f\u202f\ufeff"
        ),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)


@settings(max_examples=60, deadline=None)
@given(
    layout=st.sampled_from(sorted(_LAYOUTS)),
    messages=st.lists(
        st.tuples(_NAMES, st.lists(_LINE_TEXT, min_size=1, max_size=3), st.integers(1, 50_000)),
        min_size=2,
        max_size=25,
    ),
)
def test_rendered_exports_parse_back_to_what_was_written(
    layout: str, messages: list[tuple[str, list[str], int]]
) -> None:
    """Round trip: any names (with ': ' too), multi-line texts and times, in each layout, read back exactly."""
    # A name holding ": " is learnt from its repeats: said once, "Dr: Kim: hi" reads as Dr saying "Kim: hi".
    assume(sum(1 for n, _, _ in messages if n == "Dr: Kim") != 1)
    header, order = _LAYOUTS[layout]
    moment = datetime(2022, 1, 13, 7, 5)  # day 13: the file itself tells day from month
    lines, expected = [], []
    for name, parts, gap in messages:
        moment += timedelta(minutes=gap)
        assume(not any(_looks_like_header(p) for p in parts))
        lines.append(f"{header(moment)}{name}: {parts[0]}\n")
        lines += [f"{p}\n" for p in parts[1:]]
        stamp = moment if layout == "ios_de" else moment.replace(second=0)
        expected.append((stamp, name, "\n".join(parts)))
    detection = detect(lines)
    assert detection is not None and detection.date_order == order
    batches = list(parse_lines(lines, detection, _ctx()))
    zone = ZoneInfo("Asia/Seoul")
    rows = [(r["ts"].astimezone(zone).replace(tzinfo=None), r["speaker"], r["text"])
            for b in batches for r in b.messages.to_pylist()]  # fmt: skip
    assert rows == expected


def _looks_like_header(text: str) -> bool:
    from parsers.whatsapp.export import _header, clean_line

    return _header(clean_line(text)) is not None


_PIECES = st.sampled_from([
    "[", "]", " ", "  ", "-", "–", ".", "/", ",", ":", ": ", "1", "12", "13", "2021", "21", "0", "99", "오전 ", "오후 ",
    "AM", "PM", "a.m.", "p. m.", "\u202f", "\u00a0", "\u200e", "\u200f", "\ufeff", "Mom", "Dr: Kim", "x",
])  # fmt: skip
_HEADERISH = st.builds(
    lambda stamp, tail: stamp + tail,
    st.sampled_from(
        [
            "12/31/21, 11:59 PM - ",
            "[31.12.21, 23:59:59] ",
            "2021. 12. 31. 오후 11:59 - ",
            "1/2/2022, 9:05\u202fa.m. - ",
            "\u200e[1/2/22, 09:05:07] ",
            "31-12-2021 23:59 – ",
            "12/31/21, 11:59:5 PM - ",
            "[12/31/21 11.59.59] ",
        ]
    ),
    st.lists(_PIECES, max_size=6).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(st.one_of(_HEADERISH, st.lists(_PIECES, max_size=14).map("".join)), min_size=1, max_size=8)
)
def test_the_byte_scanner_reads_every_line_as_the_cleaned_line_regex_does(lines: list[str]) -> None:
    """Differential: the vectorised header scan agrees with the per-line regex on any mix of header pieces."""
    from parsers.whatsapp.export import _header, clean_line
    from parsers.whatsapp.headers import scan_headers

    lines = [x.replace("\n", " ") for x in lines]
    data = "".join(f"{x}\n" for x in lines).encode()
    found = scan_headers(data, pieces=True)
    rows = iter(range(int(found.header.sum())))
    for i, line in enumerate(lines):
        match = _header(clean_line(line))
        assert bool(found.header[i]) == (match is not None), line
        if match is None:
            continue
        row = next(rows)
        assert found.fields["a"][i] == int(match["a"]) and found.fields["c"][i] == int(match["c"])
        assert found.fields["h"][i] == int(match["h"]) and found.fields["s"][i] == int(match["s"] or 0)
        assert found.fields["ap"][i] == {"": 0, "a": 1, "p": 2}[(match["ap"] or "")[:1].lower()], line
        rest = match["rest"]
        head, colon, tail = rest.partition(": ")
        assert found.head[row].as_py() == (head if colon else None), line
        written = data[found.tail_a[row] : found.lines.end[i]].decode() if colon else None
        assert (clean_line(written) if written is not None else None) == (tail if colon else None), line
