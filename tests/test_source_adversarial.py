"""The adversarial input set of issue 27 for SMS, Telegram, LINE, Messenger/Instagram and WhatsApp exports.

For each format, a small export written as the app writes it (tests/test_source_roundtrip.py has the
writers' rules), then broken: binary garbage after its first bytes, an empty file, cuts at many points,
other encodings, a zip holding it and a zip bomb holding it. What every reader must do with such input
(the KakaoTalk reader's contract): read what is whole and quarantine the rest, or fail with one line
naming the file and the cause, never a traceback, never silently losing a whole message. Most cases go
through `inspect_export`/`iter_batches` in-process; the CLI cases call `flows.cli.main` (the console
script's entry point) or the console script itself.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows.cli import main
from parsers.base import ParseContext
from parsers.errors import InputError
from parsers.exports import inspect_export, iter_batches
from tests.test_source_roundtrip import line_message, mojibake, xml_attr

FORMATS = ("sms", "telegram", "line", "messenger", "whatsapp")
#: What each format's export is called (zip members are recognised by their suffix).
FILE_NAMES = {
    "sms": "sms-20240103090000.xml",
    "telegram": "result.json",
    "line": "[LINE] Chat with 엄마.txt",
    "messenger": "message_1.json",
    "whatsapp": "WhatsApp Chat with 엄마.txt",
}
NNBSP = "\u202f"
#: (speaker, text): the owner's own SMS are spoken by `나`.
Said = tuple[str, str]
FULL: list[Said] = [
    ("엄마", "새해 복 많이 받아 😀"),
    ("나", "엄마도요\n건강하세요 ❤️"),
    ("엄마", 'Tom & Jerry <3 "보자"'),
    ("Zoë", "café au lait? naïve!"),
    ("나", "ㅋㅋㅋ 👨\u200d👩\u200d👧"),
    ("엄마", "밥은 먹었니"),
]
#: Text that EUC-KR (CP949) can hold.
KOREAN: list[Said] = [
    ("엄마", "새해 복 많이 받아"),
    ("나", "엄마도요\n건강하세요"),
    ("엄마", "밥은 먹었니? 김치찌개 해놨다"),
    ("나", "네 지금 가요"),
]
#: Text that cp1252 can hold: mostly ASCII, as a Western chat is, a few accented letters.
WESTERN: list[Said] = [
    *[("Mom", f"See you at {i} o'clock, love you") for i in range(1, 30)],
    ("Zoë", "café au lait?"),
    ("Mom", "naïve über Ångström, señor"),
]


@dataclass(frozen=True)
class Sample:
    """An export's bytes, the byte span of each message's record, and the rows it reads back as."""

    data: bytes
    spans: list[tuple[int, int]]  # per row, in row order: [start, end) of its record, end before the newline
    rows: list[Said]


def _join(
    frame_head: str, records: list[str], separator: str, frame_tail: str
) -> tuple[str, list[tuple[int, int]]]:
    """Records joined between a head and a tail, with each record's UTF-8 byte span."""
    text, spans = frame_head, []
    for i, record in enumerate(records):
        if i:
            text += separator
        start = len(text.encode("utf-8"))
        text += record
        spans.append((start, len(text.encode("utf-8"))))
    return text + frame_tail, spans


def _room(said: list[Said]) -> str:
    """Whom the chat is with: its first speaker."""
    return said[0][0]


def _sms(said: list[Said]) -> tuple[str, list[tuple[int, int]]]:
    """One thread per contact (its number from its name); the owner's (`나`) go to the room's thread."""
    records = []
    for i, (who, text) in enumerate(said):
        contact = _room(said) if who == "나" else who
        number = "010" + str(sum(map(ord, contact)) % 10**8).zfill(8)
        records.append(
            f'<sms protocol="0" address="{number}" date="{1704067200000 + i * 60_000}" '
            f'type="{2 if who == "나" else 1}" subject="null" body="{xml_attr(text)}" toa="null" read="1" '
            f'status="-1" locked="0" date_sent="0" contact_name="{xml_attr(contact)}" />'
        )
    head = (
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
        "<!--File Created By SMS Backup & Restore v10.18.302 on 03/01/2024 09:00:00-->\n"
        f'<smses count="{len(said)}" backup_set="0b1d" backup_date="1704240000000" type="full">\n  '
    )
    return _join(head, records, "\n  ", "\n</smses>\n")


def _telegram(said: list[Said]) -> tuple[str, list[tuple[int, int]]]:
    """One chat, one message a line (as Telegram Desktop indents it)."""
    records = [
        json.dumps({"id": i + 1, "type": "message", "date": "2024-01-01T09:00:00",
                    "date_unixtime": str(1704067200 + i * 60), "from": who, "from_id": f"user{len(who)}",
                    "text": text, "text_entities": [{"type": "plain", "text": text}]}, ensure_ascii=False)
        for i, (who, text) in enumerate(said)
    ]  # fmt: skip
    name = json.dumps(_room(said), ensure_ascii=False)
    head = f'{{\n "name": {name},\n "type": "personal_chat",\n "id": 4242,\n "messages": [\n  '
    return _join(head, records, ",\n  ", "\n ]\n}\n")


def _messenger(said: list[Said]) -> tuple[str, list[tuple[int, int]]]:
    """One part of a thread: messages newest first, names and texts mojibake'd, ASCII escapes."""
    newest_first = [
        json.dumps({"sender_name": mojibake(who), "timestamp_ms": 1704067200000 + i * 60_000,
                    "content": mojibake(text), "is_geoblocked_for_viewer": False})
        for i, (who, text) in reversed(list(enumerate(said)))
    ]  # fmt: skip
    people = sorted({who for who, _ in said})
    participants = ", ".join(json.dumps({"name": mojibake(p)}) for p in people)
    head = f'{{\n  "participants": [{participants}],\n  "messages": [\n    '
    tail = f'\n  ],\n  "title": {json.dumps(mojibake(_room(said)))},\n  "thread_path": "inbox/mom_1234567890"\n}}\n'
    text, spans = _join(head, newest_first, ",\n    ", tail)
    return text, list(reversed(spans))  # rows come out oldest first


def _line(said: list[Said]) -> tuple[str, list[tuple[int, int]]]:
    """A PC English history of one day; a text holding line breaks quoted."""
    records = ["\n".join(line_message(f"09:{i:02d}", who, text)) for i, (who, text) in enumerate(said)]
    head = f"[LINE] Chat history with {_room(said)}\nSaved on: 2024/01/03 09:00\n\n2024/01/01(Mon)\n"
    return _join(head, records, "\n", "\n")


def _whatsapp(said: list[Said]) -> tuple[str, list[tuple[int, int]]]:
    """A US-English Android export (12 h clock, a narrow space before AM); continuation lines as is."""
    records = [f"1/13/22, 7:{i:02d}{NNBSP}AM - {who}: {text}" for i, (who, text) in enumerate(said)]
    return _join("", records, "\n", "\n")


WRITERS = {"sms": _sms, "telegram": _telegram, "line": _line, "messenger": _messenger, "whatsapp": _whatsapp}


def sample(fmt: str, said: list[Said] = FULL) -> Sample:
    """The export of `said` in `fmt`, as UTF-8 bytes."""
    text, spans = WRITERS[fmt](said)
    return Sample(text.encode("utf-8"), spans, list(said))


@dataclass(frozen=True)
class Outcome:
    """What reading a file gave: a one-line error, or rows (speaker, text) and quarantined reasons."""

    error: str | None
    rows: list[Said]
    quarantined: list[str]


def read(path: Path) -> Outcome:
    """Read an export in-process; an `InputError` is the outcome (one line), any other error escapes."""
    try:
        info = inspect_export(path)
        ctx = ParseContext("o1", "u1", path.name, info.sha256, info.conversation_id, "Asia/Seoul")
        batches = list(iter_batches(info, ctx))
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(f"{path}: "), message
        return Outcome(message, [], [])
    rows = [(r["speaker"], r["text"]) for b in batches for r in b.messages.to_pylist()]
    return Outcome(None, rows, [r["reason"] for b in batches for r in b.quarantine.to_pylist()])


def _write(tmp_path: Path, fmt: str, data: bytes) -> Path:
    """`data` saved under the format's usual file name."""
    path = tmp_path / FILE_NAMES[fmt]
    path.write_bytes(data)
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in-process (an unexpected exception escapes, as a traceback would)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(code: int, err: str) -> bool:
    """A failure the way the CLI must fail: non-zero, one `rememberme: error:` line, no traceback."""
    return (
        code != 0
        and err.count("\n") == 1
        and err.startswith("rememberme: error: ")
        and "Traceback" not in err
    )


# -- the samples themselves ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_sample_export_reads_back_whole(tmp_path: Path, fmt: str) -> None:
    """The unbroken samples read back exactly, and each span is its record: the baseline of every case."""
    for said in (FULL, KOREAN, WESTERN):
        made = sample(fmt, said)
        assert read(_write(tmp_path, fmt, made.data)) == Outcome(None, made.rows, [])
        assert len(made.spans) == len(made.rows)
        assert all(0 <= a < b <= len(made.data) for a, b in made.spans)


# -- binary garbage after the format's first bytes -------------------------------------------------


def _garbage(kind: str, seed: int, size: int = 3000) -> bytes:
    """Random bytes (NULs and all), or random text: markup and separators but no NUL."""
    rng = random.Random(f"{kind}-{seed}")
    if kind == "bytes":
        return rng.randbytes(size)
    alphabet = "<>&\"'=/:;,.[]{}\t \n\r ab가나0123456789\u202f"
    return "".join(rng.choice(alphabet) for _ in range(size)).encode("utf-8")


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(
    ("fmt", "kind"),
    [
        *[(fmt, "bytes") for fmt in FORMATS],
        pytest.param("sms", "text"),
        *[(fmt, "text") for fmt in FORMATS if fmt != "sms"],
    ],
)
def test_garbage_after_the_first_records_keeps_them_or_fails_in_one_line(
    tmp_path: Path, fmt: str, kind: str, seed: int
) -> None:
    """The export's head and its first records (two; Messenger's newest one), then garbage: a one-line
    error, or those records kept; binary bytes (NULs) are always refused as a binary file."""
    made = sample(fmt)
    head = made.data[: made.spans[2][0]] if fmt != "messenger" else made.data[: made.spans[-2][0]]
    outcome = read(_write(tmp_path, fmt, head + _garbage(kind, seed)))
    if kind == "bytes":
        assert outcome.error is not None and "binary file" in outcome.error
        return
    if outcome.error is None:
        kept = made.rows[:2] if fmt != "messenger" else made.rows[-1:]
        _assert_kept(outcome.rows, kept)


def _assert_kept(rows: list[Said], whole: list[Said]) -> None:
    """Every whole message is there, in order. The last may carry a torn line glued to its text, which
    then also keeps a LINE text's quotes as written (the line formats' continuation rule; the quoting
    tests of tests/test_source_roundtrip.py want it unchanged)."""
    assert len(rows) >= len(whole), (rows, whole)
    for i, (got, written) in enumerate(zip(rows, whole, strict=False)):
        if i < len(whole) - 1:
            assert got == written, (i, rows, whole)
        else:
            unquoted = got[1].replace('"', "").startswith(written[1].replace('"', ""))
            assert got[0] == written[0] and unquoted, (i, rows, whole)


# -- empty files -------------------------------------------------------------------------------------


#: An export's frame with no message in it.
FRAMES = {
    "sms": b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"0\" type=\"full\">\n</smses>\n",
    "telegram": b'{\n "name": "Mom",\n "type": "personal_chat",\n "id": 1,\n "messages": []\n}\n',
    "line": b"[LINE] Chat history with Mom\nSaved on: 2024/01/03 09:00\n\n",
    "messenger": b'{"participants": [{"name": "Mom"}], "messages": [], "title": "Mom", "thread_path": "inbox/m"}',
    "whatsapp": b"\r\n",
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "content", [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"  \n\n"], ids=["empty", "bom", "bom16", "blank"]
)
def test_an_empty_file_fails_in_one_line_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, content: bytes
) -> None:
    path = _write(tmp_path, fmt, content)
    for argv in (
        ["parse", str(path)],
        ["ingest", str(path), "--owner", "alice", "--lake", f"file://{tmp_path}/lake"],
    ):
        code, out, err = _cli(capsys, *argv)
        assert _one_error_line(code, err), (code, err)
        assert out == ""
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_holding_no_message_reads_as_none_or_fails_in_one_line(tmp_path: Path, fmt: str) -> None:
    outcome = read(_write(tmp_path, fmt, FRAMES[fmt]))
    assert outcome.error is not None or (outcome.rows, outcome.quarantined) == ([], [])


# -- cut off -----------------------------------------------------------------------------------------


def _cuts(made: Sample, name: str) -> list[int]:
    """Where to cut: around every record's start, middle and end, and 25 random places."""
    size = len(made.data)
    points = {p for a, b in made.spans for p in (a - 1, a, a + 1, (a + b) // 2, b - 1, b, b + 1)}
    rng = random.Random(f"cuts-{name}")
    points |= {rng.randrange(1, size) for _ in range(25)}
    return sorted(p for p in points if 0 < p < size)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_cut_off_anywhere_keeps_every_whole_message_or_fails_in_one_line(
    tmp_path: Path, fmt: str
) -> None:
    """Cut at ~60 points: a one-line error; or every message whose record is whole before the cut, in
    order (the last may carry the torn line), and the torn record kept as a row, quarantined or glued
    to the message before it: never silently gone."""
    made = sample(fmt)
    for cut in _cuts(made, fmt):
        outcome = read(_write(tmp_path, fmt, made.data[:cut]))
        if outcome.error is not None:
            continue
        whole = [row for row, (_, end) in zip(made.rows, made.spans, strict=True) if end <= cut]
        torn = any(start < cut < end for start, end in made.spans)
        assert len(outcome.rows) <= len(made.rows), (cut, outcome)
        _assert_kept(outcome.rows, whole)
        if torn:
            glued = bool(whole) and outcome.rows[len(whole) - 1][1] != whole[-1][1]
            assert len(outcome.rows) > len(whole) or outcome.quarantined or glued, (cut, outcome)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_cut_off_export_through_the_cli_parses_or_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    made = sample(fmt)
    start, end = made.spans[3]
    path = _write(tmp_path, fmt, made.data[: (start + end) // 2])
    code, out, err = _cli(capsys, "parse", str(path), "--jsonl")
    assert code == 0 or _one_error_line(code, err), (code, err)
    assert "Traceback" not in err
    if code == 0:
        assert [json.loads(line)["text"] for line in out.splitlines()][:2] == [t for _, t in made.rows[:2]]


LINE_HEAD = "[LINE] Chat history with Mom\nSaved on: 2024/01/03 09:00\n\n2024/01/01(Mon)\n"


@pytest.mark.parametrize(
    ("fmt", "data", "last_whole"),
    [
        ("line", f"{LINE_HEAD}09:00\tMom\thello\n09:0", "hello"),
        ("line", f"{LINE_HEAD}09:00\tMom\thello\n2024/01/0", "hello"),
        ("line", f'{LINE_HEAD}09:00\tMom\t"two\nlines"\n09:0', "two\nlines"),
        (
            "whatsapp",
            f"1/13/22, 7:05{NNBSP}AM - Mom: hello\n1/13/22, 7:06{NNBSP}AM - Minsu: hi\n1/13/22, 7:0",
            "hi",
        ),
    ],
    ids=["line-time", "line-day", "line-after-quoted", "whatsapp-header"],
)
def test_a_header_cut_off_at_the_end_leaves_the_message_before_it_unchanged(
    tmp_path: Path, fmt: str, data: str, last_whole: str
) -> None:
    outcome = read(_write(tmp_path, fmt, data.encode("utf-8")))
    assert outcome.error is None and outcome.rows[-1][1] == last_whole, outcome


@pytest.mark.parametrize(
    "broken",
    ['<sms address="010" date="1704067260000" type="1" body="Tom & Jerry" contact_name="엄마" />',
     '<sms address="010" date="1704067260000" type="1" body="a < b" contact_name="엄마" />',
     '<sms address="010" date="1704067260000" type="1" body="\x01" contact_name="엄마" />'],
    ids=["bare-ampersand", "bare-less-than", "control-character"],
)  # fmt: skip
def test_an_sms_backup_broken_mid_file_keeps_the_records_before_and_quarantines_the_rest(
    tmp_path: Path, broken: str
) -> None:
    """The module's own promise: what came before the break is kept, the rest quarantined with its reason."""
    path = _write(
        tmp_path,
        "sms",
        (
            "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"3\">\n"
            '  <sms address="010" date="1704067200000" type="1" body="밥 먹었니" contact_name="엄마" />\n'
            f"  {broken}\n"
            '  <sms address="010" date="1704067320000" type="2" body="네" contact_name="엄마" />\n</smses>\n'
        ).encode(),
    )
    outcome = read(path)
    assert outcome.error is not None or (
        outcome.rows[:1] == [("엄마", "밥 먹었니")] and bool(outcome.quarantined)
    )


# -- other encodings ---------------------------------------------------------------------------------

_ENCODINGS = {"utf-16": FULL, "utf-16-be": FULL, "cp949": KOREAN, "cp1252": WESTERN}


@pytest.mark.parametrize(("fmt", "encoding"), [(fmt, encoding) for fmt in FORMATS for encoding in _ENCODINGS])
def test_a_reencoded_export_reads_as_written_or_fails_in_one_line_naming_the_encoding(
    tmp_path: Path, fmt: str, encoding: str
) -> None:
    """The export saved again as UTF-16 (LE with a BOM, BE without), EUC-KR or cp1252 (each holding text
    it can encode; the SMS declaration still says UTF-8, as an editor leaves it)."""
    made = sample(fmt, _ENCODINGS[encoding])
    text = made.data.decode("utf-8")
    data = (text if encoding.startswith("utf") else text.replace(NNBSP, " ")).encode(encoding)
    outcome = read(_write(tmp_path, fmt, data))
    if outcome.error is not None:
        assert any(w in outcome.error.lower() for w in ("encoding", "decode", "utf")), outcome.error
    else:
        assert (outcome.rows, outcome.quarantined) == (made.rows, [])


# -- zips ----------------------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    """A deflated zip of `members`."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_zip_holding_the_export_parses_like_the_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    made = sample(fmt)
    plain = _write(tmp_path, fmt, made.data)
    upload = _zip(
        tmp_path / "export.zip", {f"Export 2024/{FILE_NAMES[fmt]}": made.data, "media/a.jpg": b"\xff\xd8"}
    )
    code, from_plain, _ = _cli(capsys, "parse", str(plain), "--jsonl")
    assert code == 0
    code, from_zip, err = _cli(capsys, "parse", str(upload), "--jsonl")
    assert (code, err) == (0, "")
    rows = [json.loads(line) for line in from_zip.splitlines()]
    assert [(r["speaker"], r["text"]) for r in rows] == made.rows
    assert rows == [json.loads(line) for line in from_plain.splitlines()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_zip_bomb_holding_the_export_is_refused_in_one_line_before_inflating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """The export padded with 4 MiB of spaces (legal after JSON and XML, a blank line in text): ratio ~1000."""
    made = sample(fmt)
    bomb = _zip(tmp_path / "bomb.zip", {FILE_NAMES[fmt]: made.data + b" " * (4 << 20)})
    assert bomb.stat().st_size < 64 * 1024
    for argv in (
        ["parse", str(bomb)],
        ["ingest", str(bomb), "--owner", "alice", "--lake", f"file://{tmp_path}/lake"],
    ):
        code, out, err = _cli(capsys, *argv)
        assert _one_error_line(code, err) and "refusing a zip bomb" in err, (code, err)
        assert out == ""
    assert not (tmp_path / "lake").exists()


# -- the console script itself -------------------------------------------------------------------------


def _console(*argv: str) -> subprocess.CompletedProcess[str]:
    """The installed `rememberme` console script, run without the developer's REMEMBERME_* settings."""
    exe = Path(sys.executable).with_name("rememberme")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMEMBERME_")}
    return subprocess.run(
        [str(exe), *argv], capture_output=True, text=True, env=env, check=False, timeout=120
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_console_script_refuses_binary_garbage_in_one_line(tmp_path: Path, fmt: str) -> None:
    made = sample(fmt)
    path = _write(tmp_path, fmt, made.data[:64] + _garbage("bytes", 3))
    proc = _console("parse", str(path))
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"rememberme: error: {path}: binary file")


def test_the_console_script_reports_a_broken_sms_backup_in_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "sms", sample("sms").data.replace(b"Tom &amp; Jerry", b"Tom & Jerry"))
    proc = _console("parse", str(path))
    assert "Traceback" not in proc.stderr, proc.stderr[-300:]
    assert proc.returncode == 0 or proc.stderr.count("\n") == 1


def test_samples_hold_what_the_cases_need() -> None:
    """Guards for the cases above: multi-line, markup, emoji and accented text in the samples."""
    texts: list[Any] = [t for _, t in FULL]
    assert any("\n" in t for t in texts) and any("&" in t and "<" in t for t in texts)
    assert all(t.encode("cp949") for _, t in KOREAN) and all(t.encode("cp1252") for _, t in WESTERN)


@pytest.mark.parametrize(
    "head",
    [
        # a saved web page, no chat page of Telegram's HTML export (tests/test_telegram_html.py reads those)
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8"/>\n<title>가족 사진</title>\n</head>\n<body>',
        '\ufeff<html><head><title>엄마</title></head><body><div class="pam _3-95">',  # Facebook
    ],
)
def test_an_html_export_is_refused_saying_to_export_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], head: str
) -> None:
    path = tmp_path / "messages.html"
    path.write_text(head + "\n<div>밥은 먹었니</div>\n</body></html>\n", encoding="utf-8")
    outcome = read(path)
    assert outcome.error is not None and "export the chat again as JSON" in outcome.error
    assert "Facebook and Instagram HTML exports are not read" in outcome.error
    assert _one_error_line(*_cli(capsys, "parse", str(path))[:3:2])
