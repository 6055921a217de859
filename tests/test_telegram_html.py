"""Telegram Desktop HTML exports (`messages.html`, `messages2.html`, ...), written by hand from the export
writer's layout (no other project's fixtures): each expected row worked out by hand.
"""

from __future__ import annotations

import json
import random
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from parsers.base import ParseContext
from parsers.errors import InputError
from parsers.exports import inspect_export, iter_batches
from parsers.telegram.html_export import parse_chunks
from tests.test_source_adversarial import Outcome, read

#: Hand-written pages (tests/golden/telegram_html/): one with every case of the format, and one
#: chat written as this module's `SAME_JSON` too.
PAGES = Path(__file__).parent / "golden" / "telegram_html"
HEAD = """<!DOCTYPE html>
<html>

 <head>

  <meta charset="utf-8"/>
<title>Exported Data</title>

  <meta content="width=device-width, initial-scale=1.0" name="viewport"/>

  <link href="css/style.css" rel="stylesheet"/>

  <script src="js/script.js" type="text/javascript">

  </script>

 </head>

 <body onload="CheckLocation();">

  <div class="page_wrap">

   <div class="page_header">

    <div class="content">

     <div class="text bold">
{chat}
     </div>

    </div>

   </div>

   <div class="page_body chat_page">

    <div class="history">
"""
TAIL = """
    </div>

   </div>

  </div>

 </body>

</html>
"""

#: One page of the chat with 엄마, as Telegram Desktop lays it out: every case of the format.
GOLDEN = (PAGES / "messages_golden.html").read_text(encoding="utf-8")


def _ctx(name: str = "messages.html", key: str = "f" * 64) -> ParseContext:
    return ParseContext("o1", "u1", name, key, "unused", "Asia/Seoul")


def _parse(path: Path, name: str = "messages.html") -> tuple[pa.Table, pa.Table]:
    info = inspect_export(path)
    assert (info.family, info.format_name, info.source) == ("telegram", "telegram_html", "telegram_html")
    assert info.conversations_in_rows
    batches = list(iter_batches(info, _ctx(name, info.sha256)))
    return pa.concat_tables([b.messages for b in batches]), pa.concat_tables([b.quarantine for b in batches])


def _at(day: int, hour: int, minute: int) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=UTC)


def test_the_golden_page_parses_to_the_rows_worked_out_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "messages.html"
    path.write_text(GOLDEN, encoding="utf-8")
    messages, quarantine = _parse(path)
    rows = [(r["ts"], r["speaker"], r["text"], r["kind"]) for r in messages.to_pylist()]
    assert rows == [
        (_at(1, 0, 0), "엄마", "새해 복 많이 받아\n올해도 건강하고 <3 & \"행복\" '해'", "text"),
        (_at(1, 0, 1), "엄마", "이거 봐 https://example.org/a?b=1&c=2 정말 재밌어", "text"),  # joined
        (_at(1, 0, 3), "민수", "[photo]", "photo"),
        (_at(1, 0, 4), "엄마", "[voice]", "voice"),
        (_at(1, 0, 5), "민수", "[emoticon 😀]", "emoticon"),
        # the service line (no time) and the second date line are not rows
        (_at(1, 23, 30), "엄마", "이모가 보낸 글이야\n다들 잘 지내지?", "text"),  # forwarded: 엄마 speaks it
        (_at(1, 23, 31), "민수", "네 이모한테도 안부 전해주세요", "text"),  # the reply note is not text
        (_at(2, 9, 6), "엄마", "저녁 먹었니", "text"),  # no offset: 18:06 in Seoul
        (_at(2, 15, 7), "민수", "ls -al 해봐요 비밀", "text"),  # 10:07 at UTC-05:00
        (_at(2, 10, 0), None, "엄마 phone call", "call"),
        (_at(2, 10, 1), "Deleted Account", "누구세요", "text"),
    ]
    assert messages["line_no"].to_pylist() == [101, 102, 103, 104, 105, 107, 108, 109, 110, 111, 112]
    assert all(
        m.endswith(f"-{n:010d}")
        for m, n in zip(messages["message_id"].to_pylist(), messages["line_no"].to_pylist(), strict=True)
    )
    assert set(messages["source"].to_pylist()) == {"telegram_html"}
    assert len(set(messages["conversation_id"].to_pylist())) == 1
    assert [(q["line_no"], q["reason"]) for q in quarantine.to_pylist()] == [
        (106, "service message without a time"),
        (113, "no date"),
        (114, "unreadable date"),
    ]
    assert "this message" in quarantine["raw"][0].as_py() and "날짜 없음" in quarantine["raw"][1].as_py()


def test_a_page_read_in_small_pieces_gives_the_same_rows() -> None:
    """The reader streams: any cut of the text into pieces (feeds) reads the same as one piece."""
    whole = [b.messages for b in parse_chunks([GOLDEN], _ctx())]
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(GOLDEN)), 60))
    pieces = [GOLDEN[a:b] for a, b in zip([0, *cuts], [*cuts, len(GOLDEN)], strict=True)]
    assert pa.concat_tables([b.messages for b in parse_chunks(pieces, _ctx())]) == pa.concat_tables(whole)
    small = list(parse_chunks(pieces, _ctx(), batch=4))
    assert len(small) > 2 and pa.concat_tables([b.messages for b in small]) == pa.concat_tables(whole)


def _message(number: int, who: str | None, stamp: str, text: str, joined: bool = False) -> str:
    """A text message block as the writer lays it out (`who` None: joined to the one before)."""
    name = f'\n       <div class="from_name">\n{who} \n       </div>\n' if who else ""
    return (
        f'\n     <div class="message default clearfix{" joined" if joined else ""}" id="message{number}">\n'
        f'\n      <div class="body">\n\n       <div class="pull_right date details" title="{stamp}">\n'
        f'{stamp[11:16]}\n       </div>\n{name}\n       <div class="text">\n{text}\n       </div>\n'
        "\n      </div>\n\n     </div>\n"
    )


def _pages() -> dict[str, str]:
    """A chat of three messages a page, split as Telegram splits it (each page names the chat)."""
    first = HEAD.format(chat="엄마 ") + (
        '\n     <div class="message service" id="message-1">\n      <div class="body details">\n'
        "1 January 2024\n      </div>\n     </div>\n"
        + _message(1, "엄마", "01.01.2024 09:00:00 UTC+09:00", "잘 잤니")
        + _message(2, None, "01.01.2024 09:01:00 UTC+09:00", "아침은?", joined=True)
        + _message(3, "민수", "01.01.2024 09:02:00 UTC+09:00", "네 먹었어요")
        + '\n     <a class="pagination block_link" href="messages2.html">\nNext messages\n     </a>\n'
    )
    second = HEAD.format(chat="엄마 ") + (
        '\n     <a class="pagination block_link" href="messages.html">\nPrevious messages\n     </a>\n'
        '\n     <div class="message service" id="message-2">\n      <div class="body details">\n'
        "1 January 2024\n      </div>\n     </div>\n"
        + _message(4, "엄마", "01.01.2024 09:03:00 UTC+09:00", "그래 다행이다")
        + _message(5, "민수", "01.01.2024 09:04:00 UTC+09:00", "점심에 전화할게요")
    )
    return {"messages.html": first + TAIL, "messages2.html": second + TAIL}


def test_the_pages_of_one_chat_are_one_conversation(tmp_path: Path) -> None:
    threads, texts = set(), []
    for name, page in _pages().items():
        path = tmp_path / name
        path.write_text(page, encoding="utf-8")
        messages, quarantine = _parse(path, name)
        assert quarantine.num_rows == 0
        threads.update(messages["conversation_id"].to_pylist())
        texts += messages["text"].to_pylist()
    assert len(threads) == 1 and texts == [
        "잘 잤니",
        "아침은?",
        "네 먹었어요",
        "그래 다행이다",
        "점심에 전화할게요",
    ]
    other = tmp_path / "other.html"
    other.write_text(_pages()["messages.html"].replace("엄마 \n", "아빠 \n", 1), encoding="utf-8")
    assert set(_parse(other)[0]["conversation_id"].to_pylist()).isdisjoint(threads)  # another chat


def test_a_zip_of_the_html_export_ingests_every_message_once(tmp_path: Path) -> None:
    from infra.settings import Settings
    from infra.storage import open_storage
    from tasks.ingest.lake import load_message_table
    from tasks.ingest.uploads import ingest_export

    upload = tmp_path / "ChatExport.zip"
    with zipfile.ZipFile(upload, "w") as zf:
        for name, page in _pages().items():
            zf.writestr(f"ChatExport_2024-01-01/{name}", page.encode("utf-8"))
        zf.writestr("ChatExport_2024-01-01/css/style.css", b".page_wrap { color: #000 }\n")
        zf.writestr("ChatExport_2024-01-01/photos/x.jpg", b"\xff\xd8\xff")
    storage = open_storage(f"file://{tmp_path}/lake")
    summary = ingest_export(upload, "o1", storage, Settings())
    assert [f.source for f in summary.files] == ["telegram_html", "telegram_html"]
    table = load_message_table(storage, "o1")
    assert sorted(table["text"].to_pylist()) == sorted(
        ["잘 잤니", "아침은?", "네 먹었어요", "그래 다행이다", "점심에 전화할게요"]
    )
    assert (
        len(set(table["message_id"].to_pylist())) == 5 and len(set(table["conversation_id"].to_pylist())) == 1
    )
    assert set(table["speaker"].to_pylist()) == {"엄마", "민수"}


#: One chat written by hand twice: as Telegram's JSON (`result.json`) and as its HTML page.
SAME_JSON: dict[str, Any] = {
    "name": "엄마",
    "type": "personal_chat",
    "id": 4242,
    "messages": [
        {"id": 1, "type": "service", "date": "2024-03-01T09:00:00", "date_unixtime": "1709251200",
         "actor": "엄마", "actor_id": "user42", "action": "phone_call", "duration_seconds": 31, "text": ""},
        {"id": 2, "type": "message", "date": "2024-03-01T09:01:00", "date_unixtime": "1709251260",
         "from": "엄마", "from_id": "user42", "text": "전화 받아\n바쁘니?"},
        {"id": 3, "type": "message", "date": "2024-03-01T09:02:00", "date_unixtime": "1709251320",
         "from": "민수", "from_id": "user7",
         "text": ["이거 봐요 ", {"type": "link", "text": "https://example.org"}, " ", {"type": "bold", "text": "꼭"}]},
        {"id": 4, "type": "message", "date": "2024-03-01T09:03:00", "date_unixtime": "1709251380",
         "from": "엄마", "from_id": "user42", "photo": "photos/photo_1@01-03-2024_09-03-00.jpg", "text": ""},
        {"id": 5, "type": "message", "date": "2024-03-01T09:04:00", "date_unixtime": "1709251440",
         "from": "엄마", "from_id": "user42", "file": "video_files/v.mp4", "media_type": "video_file",
         "text": "손주 영상 & 사진"},
        {"id": 6, "type": "message", "date": "2024-03-01T09:05:00", "date_unixtime": "1709251500",
         "from": "민수", "from_id": "user7", "file": "voice_messages/audio_1.ogg",
         "media_type": "voice_message", "duration_seconds": 4, "text": ""},
        {"id": 7, "type": "message", "date": "2024-03-01T09:06:00", "date_unixtime": "1709251560",
         "from": "엄마", "from_id": "user42", "file": "stickers/s.webp", "media_type": "sticker",
         "sticker_emoji": "❤️", "text": ""},
        {"id": 8, "type": "message", "date": "2024-03-01T09:07:00", "date_unixtime": "1709251620",
         "from": "엄마", "from_id": "user42", "forwarded_from": "이모", "text": "이모 말이 맞다"},
        {"id": 9, "type": "message", "date": "2024-03-01T21:08:00", "from": "민수", "from_id": "user7",
         "reply_to_message_id": 8, "text": "네 알겠어요"},
        {"id": 10, "type": "message", "date": "2024-03-01T21:09:00", "date_unixtime": "1709294940",
         "from": "민수", "from_id": "user7", "file": "files/list.pdf", "text": ""},
    ],
}  # fmt: skip

SAME_HTML = (PAGES / "messages_same_chat.html").read_text(encoding="utf-8")


def test_the_same_chat_as_json_and_as_html_gives_the_same_rows(tmp_path: Path) -> None:
    as_json = tmp_path / "result.json"
    as_json.write_text(json.dumps(SAME_JSON, ensure_ascii=False, indent=1), encoding="utf-8")
    as_html = tmp_path / "messages.html"
    as_html.write_text(SAME_HTML, encoding="utf-8")
    read = []
    for path in (as_json, as_html):
        info = inspect_export(path)
        batches = list(iter_batches(info, _ctx(path.name, info.sha256)))
        assert sum(b.quarantine.num_rows for b in batches) == 0
        table = pa.concat_tables([b.messages for b in batches])
        read.append([(r["ts"], r["speaker"], r["text"], r["kind"]) for r in table.to_pylist()])
    from_json, from_html = read
    assert from_html == from_json
    assert [k for *_, k in from_html] == [
        "call",
        "text",
        "text",
        "photo",
        "video",
        "voice",
        "emoticon",
        "text",
        "text",
        "file",
    ]
    assert from_html[0] == (datetime(2024, 3, 1, 0, 0, tzinfo=UTC), None, "엄마 phone call", "call")
    assert from_html[6][2] == "[emoticon ❤️]" and from_html[8][0] == datetime(2024, 3, 1, 12, 8, tzinfo=UTC)


# -- adversarial -------------------------------------------------------------------------------------


def _small() -> tuple[str, list[tuple[int, int]], list[tuple[str, str]]]:
    """A small page, where each message's block starts and ends, and its rows (speaker, text)."""
    said = [
        (1, "엄마", "01.01.2024 09:00:00 UTC+09:00", "새해 복 많이 받아<br>건강하렴", False),
        (2, None, "01.01.2024 09:01:00 UTC+09:00", "Tom &amp; Jerry &lt;3", True),
        (3, "민수", "01.01.2024 09:02:00 UTC+09:00", "엄마도요 <strong>❤️</strong>", False),
        (4, "엄마", "01.01.2024 09:03:00", "밥은 먹었니", False),
    ]
    data = HEAD.format(chat="엄마 ")
    spans = []
    for number, who, stamp, text, joined in said:
        block = _message(number, who, stamp, text, joined)
        spans.append((len(data.encode("utf-8")), len((data + block).encode("utf-8")) - 1))  # to its `</div>`
        data += block
    rows = [
        ("엄마", "새해 복 많이 받아\n건강하렴"),
        ("엄마", "Tom & Jerry <3"),
        ("민수", "엄마도요 ❤️"),
        ("엄마", "밥은 먹었니"),
    ]
    return data + TAIL, spans, rows


def test_a_small_page_reads_back_whole(tmp_path: Path) -> None:
    data, _, rows = _small()
    path = tmp_path / "messages.html"
    path.write_text(data, encoding="utf-8")
    assert read(path) == Outcome(None, rows, [])


def test_a_page_cut_off_anywhere_keeps_every_whole_message_or_fails_in_one_line(tmp_path: Path) -> None:
    data, spans, rows = _small()
    raw = data.encode("utf-8")
    path = tmp_path / "messages.html"
    outcomes = 0
    ends = [end + d for _, end in spans for d in (-1, 0, 1)]
    for cut in [*range(1, len(raw), 47), *ends, *(start + d for start, _ in spans for d in (7, 8, 9, 20))]:
        path.write_bytes(raw[:cut])
        outcome = read(path)  # an error is one line naming the file (checked in `read`)
        if outcome.error is not None:
            assert cut < spans[0][1], (cut, outcome.error)  # only before the first message is whole
            continue
        outcomes += 1
        whole = sum(1 for _, end in spans if end <= cut)
        assert outcome.rows == rows[:whole], cut
        inside = any(start < cut < end for start, end in spans)
        assert set(outcome.quarantined) <= {"truncated last message"} and len(outcome.quarantined) <= int(
            inside
        )
        if any(start + 8 < cut < end for start, end in spans):  # from `<d` of its opening tag on
            assert outcome.quarantined == ["truncated last message"], cut
    assert outcomes > 10


def test_an_empty_page_and_binary_garbage_fail_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "messages.html"
    path.write_bytes(b"")
    assert (outcome := read(path)).error is not None and "empty file" in outcome.error
    path.write_bytes(random.Random(3).randbytes(4000))
    assert (outcome := read(path)).error is not None
    data, spans, _ = _small()
    path.write_bytes(data.encode("utf-8")[: spans[2][0]] + b"\x00\x01" + random.Random(4).randbytes(3000))
    assert (outcome := read(path)).error is not None and "binary file" in outcome.error


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_markup_garbage_after_the_first_messages_keeps_them_or_fails_in_one_line(
    tmp_path: Path, seed: int
) -> None:
    data, spans, rows = _small()
    rng = random.Random(seed)
    garbage = "".join(rng.choice("<>&\"'=/!?[]-:;#x \n가div") for _ in range(4000))
    path = tmp_path / "messages.html"
    path.write_text(
        data[: len(data.encode("utf-8")[: spans[2][0]].decode("utf-8"))] + garbage + "<![CDATA[ x",
        encoding="utf-8",
    )
    outcome = read(path)
    if outcome.error is None:
        assert outcome.rows[:2] == rows[:2]


@pytest.mark.parametrize(
    "page",
    [
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8"/>\n<title>Exported Data</title>\n</head>\n<body>\n<div class="page_wrap">\n<div class="page_body list_page">\n<div class="entry_list">\n<div>엄마</div>\n</div>\n</div>\n</div>\n</body></html>\n',
        '\ufeff<html><head><title>엄마</title></head><body><div class="pam _3-95 _2pi0 _a6-g uiBoxWhite noborder"><div class="_3-95 _2pim _a6-h _a6-i">엄마</div><div class="_3-95 _a6-p"><div>밥은 먹었니</div></div></div></body></html>\n',
    ],
)
def test_an_html_page_that_is_not_a_telegram_chat_is_refused_saying_to_export_json(
    tmp_path: Path, page: str
) -> None:
    path = tmp_path / "messages.html"
    path.write_text(page, encoding="utf-8")
    outcome = read(path)
    assert outcome.error is not None and "export the chat again as JSON" in outcome.error
    assert "Facebook and Instagram" in outcome.error
    with pytest.raises(InputError):
        inspect_export(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "cp949"])
def test_a_reencoded_page_reads_as_written_or_fails_in_one_line_naming_the_encoding(
    tmp_path: Path, encoding: str
) -> None:
    data, _, rows = _small()
    if encoding == "cp949":  # what EUC-KR can hold
        data = data.replace("<strong>❤️</strong>", "<strong>사랑해요</strong>")
        rows[2] = ("민수", "엄마도요 사랑해요")
    path = tmp_path / "messages.html"
    path.write_bytes(data.encode(encoding))
    outcome = read(path)
    if outcome.error is not None:
        assert any(w in outcome.error.lower() for w in ("encoding", "decode", "utf")), outcome.error
    else:
        assert (outcome.rows, outcome.quarantined) == (rows, [])


def test_a_joined_message_without_one_before_it_and_a_repeated_id_are_quarantined() -> None:
    page = (
        HEAD.format(chat="엄마")
        + _message(5, None, "01.01.2024 09:00:00 UTC+09:00", "누가 말했지", joined=True)
        + _message(6, "엄마", "01.01.2024 09:01:00 UTC+09:00", "엄마야")
        + _message(6, "엄마", "01.01.2024 09:02:00 UTC+09:00", "같은 번호")
        + '\n     <div class="message default clearfix">\n      <div class="body">\n'
        '       <div class="pull_right date details" title="01.01.2024 09:03:00 UTC+09:00">09:03</div>\n'
        '       <div class="from_name">엄마</div>\n       <div class="text">번호 없음</div>\n      </div>\n     </div>\n'
        + TAIL
    )
    (batch,) = parse_chunks([page], _ctx())
    assert batch.messages["text"].to_pylist() == ["엄마야", "번호 없음"]
    assert batch.messages["line_no"].to_pylist()[1] > 9_000_000_000  # no id: above every Telegram id
    assert [(q["line_no"], q["reason"]) for q in batch.quarantine.to_pylist()] == [
        (5, "no sender"),
        (6, "repeated message id"),
    ]


def test_rememberme_formats_lists_the_html_export(capsys: pytest.CaptureFixture[str]) -> None:
    from flows.cli import main

    assert main(["formats", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name": "telegram", "source": "telegram_html"} in [
        {k: r[k] for k in ("name", "source")} for r in rows
    ]
