"""Round trips for the SMS, Telegram, LINE and Messenger/Instagram readers (issue 27).

Each property generates conversations (names and texts from Korean, Latin, emoji, punctuation and
spaces; multi-line texts; times), writes them the way the app writes its export (worked out from the
format's documentation, as the hand-written golden tests are), reads the file back through the one
entry for every source (`inspect_export`, `iter_batches`) and compares every message exactly: speaker
(as the reader maps it), text, instant, kind, row count, and nothing quarantined. The tests at the
end are parser bugs these properties found (since fixed), each with its input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from parsers.base import ParseContext, number_handle
from parsers.exports import inspect_export, iter_batches

ZONE = "Asia/Seoul"
OWNER = "o1"
#: The speaker of the owner's own SMS and MMS (parsers/sms/export.py).
SELF = "나"
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# -- realistic alphabets -------------------------------------------------------------------------

KOREAN = "가각간나다라마바사아자차카타파하한글엄마아빠사랑해요밥먹었니ㅋㅎㅠ"
LATIN = "aAbBkKmMzZéüñçßØÅ"
DIGITS = "0129"
PUNCT = "!?.,:;'\"&<>#%@()[]{}~-_=+*/\\|^`$"
EMOJI = ("😀", "❤️", "👍🏽", "🇰🇷", "👨\u200d👩\u200d👧", "🥲", "☺", "✌️")
#: Pieces that look like the formats' own escapes, typed by a person as text.
LOOKALIKES = ("&#55357;", "&#10;", "&amp;", "&lt;", "]]>", "<!--", "\\n", "\\u00e9", "Ã©", "&#", '""')
_CHARS = sorted(set(KOREAN + LATIN + DIGITS + PUNCT + " "))
_TOKEN = st.one_of(st.sampled_from(_CHARS), st.sampled_from(EMOJI), st.sampled_from(LOOKALIKES))

#: One line of text: any of the above, spaces at either end kept.
LINE_TEXT = st.lists(_TOKEN, min_size=1, max_size=16).map("".join)
#: A text of one to three lines (a line inside may be empty).
TEXT = (
    st.lists(st.lists(_TOKEN, max_size=16).map("".join), min_size=1, max_size=3).map("\n".join).filter(bool)
)
NAME = st.one_of(
    st.sampled_from(
        ["엄마", "아빠", "Mom", "Zoë", "O'Brien", '"Boss"', "Tom & Jerry", "민수 😀", "<Kim>", "A.B"]
    ),
    st.lists(_TOKEN, min_size=1, max_size=8).map("".join).map(str.strip).filter(bool),
)


@dataclass(frozen=True)
class Row:
    """One message as read back: what the comparisons look at."""

    ts: datetime
    speaker: str | None
    text: str
    kind: str


def _read(path: Path) -> tuple[list[dict[str, Any]], str]:
    """All message rows of an export through the one entry for every source; nothing quarantined."""
    info = inspect_export(path)
    ctx = ParseContext(OWNER, "u1", path.name, info.sha256, info.conversation_id, ZONE)
    batches = list(iter_batches(info, ctx))
    quarantined = [r for b in batches for r in b.quarantine.to_pylist()]
    assert quarantined == []
    return [r for b in batches for r in b.messages.to_pylist()], info.family


def _rows(rows: list[dict[str, Any]]) -> list[Row]:
    """The compared fields of each row, the instant in UTC."""
    return [Row(r["ts"].astimezone(UTC), r["speaker"], r["text"], r["kind"]) for r in rows]


def _same_partition(keys: list[str], ids: list[str]) -> bool:
    """Whether rows share a conversation id exactly when they share a generated thread key."""
    forward: dict[str, str] = {}
    backward: dict[str, str] = {}
    for key, found in zip(keys, ids, strict=True):
        if forward.setdefault(key, found) != found or backward.setdefault(found, key) != key:
            return False
    return True


# -- SMS Backup & Restore ------------------------------------------------------------------------


def xml_attr(value: str) -> str:
    """An attribute value as the app writes it: markup escaped, line breaks and tabs as references,
    and a character beyond the BMP as the character references of its two UTF-16 halves."""
    out = []
    for char in value:
        code = ord(char)
        if char in "&<>\"'":
            out.append({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}[char])
        elif char in "\n\r\t":
            out.append(f"&#{code};")
        elif code > 0xFFFF:
            high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
            out.append(f"&#{high};&#{low};")
        else:
            out.append(char)
    return "".join(out)


#: Other sides' numbers, each its own thread (no two normalise to the same digits).
NUMBERS = ("+82 10-1234-5678", "01098765432", "+1 (555) 010-9999", "1588-1234", "+44 7700 900123")
OWNER_NUMBER = "+821055550000"
UNKNOWN_NAMES = ("(Unknown)", "null", "")


@dataclass(frozen=True)
class Sms:
    """One generated `<sms>` or `<mms>` record."""

    thread: int  # index into the thread's numbers
    mine: bool
    ms: int
    texts: tuple[str, ...]  # an SMS body, or an MMS's text parts
    mms: bool = False
    image: bool = False  # an MMS with a picture part
    #: The `type` of the owner's SMS: 2 sent, 3 draft, 4 outbox, 5 failed, 6 queued.
    owner_type: int = 2


def sms_speaker(name: str, number: str) -> str:
    """The speaker of another side: its contact name, else the stable handle of its number.

    A name holding a comma is read as a group's list of names (parsers/sms/export.py), never as one name.
    """
    if name in UNKNOWN_NAMES or "," in name:
        return number_handle(OWNER, number)
    return name


def render_sms(records: list[Sms], threads: list[tuple[str, ...]], names: dict[str, str]) -> str:
    """An SMS Backup & Restore file holding `records` in order (numbers of a group joined by '~')."""
    out = [
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>",
        "<!--File Created By SMS Backup & Restore v10.18.302 on 03/01/2024 09:00:00-->",
        f'<smses count="{len(records)}" backup_set="0b1d-4a" backup_date="1704240000000" type="full">',
    ]
    for r in records:
        numbers = threads[r.thread]
        contact = xml_attr(", ".join(names[n] for n in numbers))
        readable = datetime.fromtimestamp(r.ms / 1000, UTC).strftime("%b %d, %Y %I:%M:%S %p")
        if not r.mms:
            kind = r.owner_type if r.mine else 1
            out.append(
                f'  <sms protocol="0" address="{numbers[0]}" date="{r.ms}" type="{kind}" '
                f'subject="null" body="{xml_attr(r.texts[0])}" toa="null" sc_toa="null" service_center="null" '
                f'read="1" status="-1" locked="0" date_sent="0" sub_id="1" readable_date="{readable}" '
                f'contact_name="{contact}" />'
            )
            continue
        parts = ['      <part seq="-1" ct="application/smil" name="null" chset="null" cl="smil.xml" '
                 'text="&lt;smil&gt;&lt;body&gt;&lt;par dur=&quot;5000ms&quot;/&gt;&lt;/body&gt;&lt;/smil&gt;" />']  # fmt: skip
        if r.image:
            parts.append('      <part seq="0" ct="image/jpeg" name="IMG_0001.jpg" chset="null" cl="IMG_0001.jpg" '
                         'data="/9j/4AAQSkZJRgABAQ==" />')  # fmt: skip
        parts += [f'      <part seq="0" ct="text/plain" name="null" chset="106" cl="text_{i}.txt" '
                  f'text="{xml_attr(t)}" />' for i, t in enumerate(r.texts)]  # fmt: skip
        sender = OWNER_NUMBER if r.mine else numbers[0]
        addrs = [f'      <addr address="{n}" type="{137 if n == sender else 151}" charset="106" />'
                 for n in (*numbers, OWNER_NUMBER)]  # fmt: skip
        out += [
            f'  <mms date="{r.ms}" ct_t="application/vnd.wap.multipart.related" msg_box="{(2 + r.ms % 4) if r.mine else 1}" '
            f'rr="null" sub="null" read_status="null" address="{"~".join(numbers)}" m_id="null" read="1" '
            f'm_size="null" m_type="{128 if r.mine else 132}" sim_slot="0" readable_date="{readable}" '
            f'contact_name="{contact}">',
            "    <parts>",
            *parts,
            "    </parts>",
            "    <addrs>",
            *addrs,
            "    </addrs>",
            "  </mms>",
        ]
    out.append("</smses>")
    return "\n".join(out) + "\n"


#: An SMS body: line breaks as the phone wrote them (LF or CRLF), tabs too.
SMS_TEXT = st.one_of(TEXT, TEXT.map(lambda t: t.replace("\n", "\r\n")), TEXT.map(lambda t: f"\t{t}\t"))


@st.composite
def sms_backups(draw: st.DrawFn) -> tuple[list[Sms], list[tuple[str, ...]], dict[str, str]]:
    """SMS of several threads (the owner's of every type the app writes for them), then MMS (1:1 and
    group); a group MMS's sender's name was learnt before it (from an SMS or a 1:1 MMS)."""
    count = draw(st.integers(1, len(NUMBERS)))
    numbers = NUMBERS[:count]
    contact = st.one_of(NAME, st.sampled_from(UNKNOWN_NAMES), st.sampled_from(["Kim, Minsu"]))
    names = {n: draw(contact) for n in numbers}
    threads: list[tuple[str, ...]] = [(n,) for n in numbers]
    if count >= 2:
        threads.append((numbers[0], numbers[1]))  # a group MMS thread
    ms = draw(st.integers(1_262_304_000_000, 1_893_456_000_000))  # 2010 .. 2030
    records: list[Sms] = []
    for _ in range(draw(st.integers(1, 12))):
        ms += draw(st.integers(0, 90_000_000))
        thread, mine, text = draw(st.integers(0, count - 1)), draw(st.booleans()), draw(SMS_TEXT)
        owner_type = draw(st.sampled_from([2, 2, 3, 4, 5, 6]))
        records.append(Sms(thread, mine, ms, (text,), owner_type=owner_type))
    texted = {threads[r.thread][0] for r in records}
    for _ in range(draw(st.integers(0, 4))):
        ms += draw(st.integers(0, 90_000_000))
        thread = draw(st.integers(0, len(threads) - 1))
        texts = tuple(draw(st.lists(TEXT.filter(lambda t: t != "null"), max_size=2)))
        image = not texts or draw(st.booleans())
        mine = draw(st.booleans())
        if len(threads[thread]) == 1:
            texted.add(threads[thread][0])  # a 1:1 MMS names its contact (a group's: a list of names)
        elif not mine:
            assume(threads[thread][0] in texted)
        records.append(Sms(thread, mine, ms, texts, mms=True, image=image))
    return records, threads, names


@SETTINGS
@given(backup=sms_backups())
def test_sms_backups_read_back_every_message_as_written(
    tmp_path: Path, backup: tuple[list[Sms], list[tuple[str, ...]], dict[str, str]]
) -> None:
    """Both directions, names and bodies with quotes, ampersands, line breaks and surrogate-pair emoji,
    several threads and group MMS: every message back in file order, one conversation per thread."""
    records, threads, names = backup
    path = tmp_path / "sms-20240301090000.xml"
    path.write_text(render_sms(records, threads, names), encoding="utf-8")
    rows, family = _read(path)
    assert family == "sms"
    expected = []
    for r in records:
        sender = threads[r.thread][0]
        speaker = SELF if r.mine else sms_speaker(names[sender], sender)
        if not r.mms or r.texts:
            text, kind = "\n".join(r.texts), "text"
        else:
            text, kind = "[photo]", "photo"
        expected.append(Row(datetime.fromtimestamp(r.ms / 1000, UTC), speaker, text, kind))
    assert _rows(rows) == expected
    assert [r["line_no"] for r in rows] == list(range(1, len(records) + 1))
    assert len({r["message_id"] for r in rows}) == len(rows)
    assert all(r["source"] == "android_sms_xml" for r in rows)
    assert _same_partition([str(r.thread) for r in records], [r["conversation_id"] for r in rows])


# -- Telegram Desktop ----------------------------------------------------------------------------

_ENTITY_TYPES = ("plain", "bold", "italic", "link", "mention", "code", "text_link", "spoiler")
_SERVICE_ACTIONS = ("phone_call", "pin_message", "invite_members", "group_call", "create_group")


@st.composite
def telegram_texts(draw: st.DrawFn) -> tuple[str, str | list[Any]]:
    """A text, and how the export writes it: a string, or strings and entities to concatenate."""
    text = draw(TEXT)
    if draw(st.booleans()):
        return text, text
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=4)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    parts: list[Any] = []
    for piece in pieces:
        kind = draw(st.sampled_from(("string", *_ENTITY_TYPES)))
        if kind == "string":
            parts.append(piece)
        else:
            entity: dict[str, Any] = {"type": kind, "text": piece}
            if kind == "text_link":
                entity["href"] = "https://example.org/a?b=1&c=2"
            parts.append(entity)
    return text, parts


@st.composite
def telegram_chats(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[list[Row]]]:
    """Chats (Telegram's JSON) and the rows each must read back as."""
    chats, expected = [], []
    moment = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 300_000_000)))
    for number in range(draw(st.integers(1, 3))):
        people = draw(st.lists(NAME, min_size=1, max_size=3, unique=True))
        messages, rows = [], []
        for i in range(draw(st.integers(1, 10))):
            moment += timedelta(seconds=draw(st.integers(0, 200_000)))
            local = moment.astimezone(ZoneInfo(ZONE)).replace(tzinfo=None)
            message: dict[str, Any] = {"id": i + 1, "type": "message", "date": local.isoformat()}
            shape = draw(st.sampled_from(("text", "text", "text", "photo", "voice", "sticker", "service")))
            # Exports before 2022 have no date_unixtime (`date` is local time); their messages have a
            # `from_id`, which is what tells such a file is Telegram's.
            if shape == "service" or draw(st.integers(0, 4)):
                message["date_unixtime"] = str(int(moment.timestamp()))
            if shape == "service":
                actor, action = draw(st.sampled_from(people)), draw(st.sampled_from(_SERVICE_ACTIONS))
                message.update(type="service", actor=actor, actor_id="user9", action=action, text="")
                kind = "call" if action in ("phone_call", "group_call") else "system"
                rows.append(Row(moment, None, f"{actor} {action.replace('_', ' ')}", kind))
                messages.append(message)
                continue
            speaker = draw(st.sampled_from(people))
            message.update({"from": speaker, "from_id": f"user{people.index(speaker)}"})
            text, written = draw(telegram_texts()) if shape in ("text", "photo") else ("", "")
            message["text"] = written
            if shape == "photo":
                message.update(photo="photos/photo_1@01-01-2024_09-03-00.jpg", width=1280, height=960)
            elif shape == "voice":
                message.update(
                    file="voice_messages/audio_1.ogg", media_type="voice_message", duration_seconds=4
                )
            elif shape == "sticker":
                message.update(file="stickers/sticker.webp", media_type="sticker", sticker_emoji="😀")
            placeholder = {"text": "", "photo": "[photo]", "voice": "[voice]", "sticker": "[emoticon 😀]"}
            kinds = {"text": "text", "photo": "photo", "voice": "voice", "sticker": "emoticon"}
            rows.append(Row(moment, speaker, text or placeholder[shape], kinds[shape]))
            messages.append(message)
        kind = draw(st.sampled_from(("personal_chat", "private_group", "private_supergroup")))
        chats.append({"name": draw(NAME), "type": kind, "id": 4000 + number, "messages": messages})
        expected.append(rows)
    return chats, expected


@SETTINGS
@given(
    case=telegram_chats(),
    whole_account=st.booleans(),
    ascii_only=st.booleans(),
    indent=st.sampled_from((None, 1)),
)
def test_telegram_exports_read_back_every_message_as_written(
    tmp_path: Path,
    case: tuple[list[dict[str, Any]], list[list[Row]]],
    whole_account: bool,
    ascii_only: bool,
    indent: int | None,
) -> None:
    """One chat or the whole account; `text` as a string or as entities whose concatenation is the text;
    instants from `date_unixtime`, else the local `date`; media and service messages typed."""
    chats, expected = case
    if whole_account:
        document: dict[str, Any] = {
            "about": "Here is the data you requested.",
            "personal_information": {"user_id": 7, "first_name": "민수", "phone_number": "+82 10 0000 0000"},
            "contacts": {"about": "", "list": []},
            "chats": {"about": "This is the list of all your chats.", "list": chats},
        }
    else:
        document = chats[0]
        expected = expected[:1]
    path = tmp_path / "result.json"
    path.write_text(json.dumps(document, ensure_ascii=ascii_only, indent=indent), encoding="utf-8")
    rows, family = _read(path)
    assert family == "telegram"
    assert _rows(rows) == [row for chat in expected for row in chat]
    keys = [str(n) for n, chat in enumerate(expected) for _ in chat]
    assert _same_partition(keys, [r["conversation_id"] for r in rows])
    assert len({r["message_id"] for r in rows}) == len(rows)


# -- LINE ----------------------------------------------------------------------------------------

_EN_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_KO_DAYS = "월화수목금토일"
_JA_DAYS = "月火水木金土日"


def _h12(t: datetime) -> int:
    """The hour on a 12-hour clock (12, 1, ..., 11)."""
    return t.hour % 12 or 12


#: layout: (title, saved-on line, day line, time of a message)
LINE_LAYOUTS: dict[str, tuple[str, str, Any, Any]] = {
    "pc_en": ("[LINE] Chat history with {}", "Saved on: 2024/01/03 09:00",
              lambda d: f"{d:%Y/%m/%d}({_EN_DAYS[d.weekday()]})", lambda t: f"{t:%H:%M}"),
    "mobile_en_ampm_first": ("[LINE] Chat history with {}", "Saved on: 1/3/2024, 09:00",
                             lambda d: f"{_EN_DAYS[d.weekday()]}, {d.month}/{d.day}/{d.year}",
                             lambda t: f"{'AM' if t.hour < 12 else 'PM'} {_h12(t)}:{t:%M}"),
    "mobile_en_ampm_last": ("[LINE] Chat history with {}", "Saved on: 1/3/2024, 09:00",
                            lambda d: f"{_EN_DAYS[d.weekday()]}, {d.month}/{d.day}/{d.year}",
                            lambda t: f"{_h12(t)}:{t:%M} {'AM' if t.hour < 12 else 'PM'}"),
    "dotted_en": ("[LINE] Chat history with {}", "Saved on: 2024.01.03 09:00",
                  lambda d: f"{d:%Y.%m.%d} {_EN_LONG[d.weekday()]}", lambda t: f"{t:%H:%M}"),
    "ko": ("[LINE] {}님과의 대화", "저장한 날짜: 2024. 1. 3. 09:00",
           lambda d: f"{d.year}. {d.month}. {d.day}. ({_KO_DAYS[d.weekday()]})",
           lambda t: f"{'오전' if t.hour < 12 else '오후'} {_h12(t)}:{t:%M}"),
    "ko_long_day": ("[LINE] {}님과의 대화", "저장한 날짜: 2024. 1. 3. 09:00",
                    lambda d: f"{d.year}. {d.month}. {d.day}. {_KO_DAYS[d.weekday()]}요일",
                    lambda t: f"{t:%H:%M}"),
    "ja": ("[LINE] {}とのトーク履歴", "保存日時：2024/01/03 09:00",
           lambda d: f"{d:%Y/%m/%d}({_JA_DAYS[d.weekday()]})",
           lambda t: f"{'午前' if t.hour < 12 else '午後'}{t.hour % 12}:{t:%M}"),
    "ja_24h": ("[LINE] {}とのトーク履歴", "保存日時：2024/01/03 09:00",
               lambda d: f"{d:%Y/%m/%d}({_JA_DAYS[d.weekday()]})", lambda t: f"{t:%H:%M}"),
}  # fmt: skip

#: A placeholder LINE writes for media, and the kind it is read as (LINE's help pages).
LINE_PLACEHOLDERS = {
    "[Sticker]": "emoticon", "[Photo]": "photo", "[Video]": "video", "[Voice message]": "voice",
    "[File]": "file", "[Location]": "location", "[Contact]": "contact", "[스티커]": "emoticon",
    "[사진]": "photo", "[동영상]": "video", "[スタンプ]": "emoticon", "[写真]": "photo",
}  # fmt: skip


def _opens_a_quote(text: str) -> bool:
    """A one-line text LINE writes as is that may read as the start of a quoted text (ambiguous when a
    later line closes a quote before the next message line; parsers/line/export.py `_quoted`)."""
    rest = text[1:]
    return text.startswith('"') and (len(rest) - len(rest.rstrip('"'))) % 2 == 0


def line_message(time: str, speaker: str | None, text: str) -> list[str]:
    """The lines LINE writes for one message: a text holding line breaks quoted, its quotes doubled."""
    if speaker is None:
        return [f"{time}\t{text}"]
    if "\n" in text:
        text = '"' + text.replace('"', '""') + '"'
    first, *rest = text.split("\n")
    return [f"{time}\t{speaker}\t{first}", *rest]


_LINE_NAME = NAME.filter(lambda n: "\t" not in n)
_NOTICE = LINE_TEXT.map(str.strip).filter(bool)


@st.composite
def line_chats(draw: st.DrawFn) -> tuple[list[tuple[datetime, str | None, str]], list[Row]]:
    """Messages (local time, speaker or None for a notice, text) and the rows they read back as."""
    people = draw(st.lists(_LINE_NAME, min_size=1, max_size=3, unique=True))
    moment = datetime(2012, 1, 1) + timedelta(minutes=draw(st.integers(0, 6_000_000)))
    messages: list[tuple[datetime, str | None, str]] = []
    rows: list[Row] = []
    for _ in range(draw(st.integers(1, 15))):
        moment += timedelta(minutes=draw(st.sampled_from((0, 1, 7, 59, 600, 1440, 4000))))
        shape = draw(st.integers(0, 9))
        if shape == 0:
            notice = draw(_NOTICE)
            messages.append((moment, None, notice))
            rows.append(Row(_utc(moment), None, notice, "system"))
            continue
        speaker = draw(st.sampled_from(people))
        if shape == 1:
            text = draw(st.sampled_from(sorted(LINE_PLACEHOLDERS)))
            kind = LINE_PLACEHOLDERS[text]
        else:
            text, kind = draw(TEXT), "text"
            assume("\n" in text or not _opens_a_quote(text))
        messages.append((moment, speaker, text))
        rows.append(Row(_utc(moment), speaker, text, kind))
    return messages, rows


def _utc(local: datetime) -> datetime:
    """A local wall-clock time in ZONE as a UTC instant."""
    return local.replace(tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


@SETTINGS
@given(
    layout=st.sampled_from(sorted(LINE_LAYOUTS)),
    case=line_chats(),
    crlf=st.booleans(),
    bom=st.booleans(),
)
def test_line_histories_read_back_every_message_as_written(
    tmp_path: Path,
    layout: str,
    case: tuple[list[tuple[datetime, str | None, str]], list[Row]],
    crlf: bool,
    bom: bool,
) -> None:
    """Every layout (PC and mobile; English, Korean and Japanese headers, day lines and clocks), quoted
    multi-line texts with doubled quotes, notices and media placeholders: every message back exactly."""
    messages, expected = case
    title, saved, day_line, clock = LINE_LAYOUTS[layout]
    lines = [title.format("엄마"), saved, ""]
    day = None
    for moment, speaker, text in messages:
        if moment.date() != day:
            day = moment.date()
            lines.append(day_line(moment))
        lines += line_message(clock(moment), speaker, text)
    newline = "\r\n" if crlf else "\n"
    path = tmp_path / "[LINE] Chat with 엄마.txt"
    path.write_bytes((("\ufeff" if bom else "") + newline.join(lines) + newline).encode("utf-8"))
    rows, family = _read(path)
    assert family == "line"
    assert _rows(rows) == expected
    assert len({r["message_id"] for r in rows}) == len(rows)


# -- Messenger and Instagram ---------------------------------------------------------------------


def mojibake(text: str) -> str:
    """What the exports write: each UTF-8 byte of the text as the latin-1 character of that value."""
    return text.encode("utf-8").decode("latin-1")


#: A media message (its key and value in the export) and the placeholder and kind it reads back as.
MESSENGER_MEDIA: dict[str, tuple[str, Any, str, str]] = {
    "photo": (
        "photos",
        [{"uri": "messages/inbox/x/photos/1.jpg", "creation_timestamp": 1}],
        "[photo]",
        "photo",
    ),
    "video": ("videos", [{"uri": "messages/inbox/x/videos/1.mp4"}], "[video]", "video"),
    "gif": ("gifs", [{"uri": "messages/inbox/x/gifs/1.gif"}], "[video]", "video"),
    "voice": ("audio_files", [{"uri": "messages/inbox/x/audio/1.mp4"}], "[voice]", "voice"),
    "sticker": ("sticker", {"uri": "messages/stickers_used/1.png"}, "[emoticon]", "emoticon"),
    "file": ("files", [{"uri": "messages/inbox/x/files/a.pdf"}], "[file]", "file"),
}


@st.composite
def messenger_threads(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Row], list[str]]:
    """A thread's messages oldest first (as written: mojibake), the rows they read back as, the people."""
    people = draw(st.lists(NAME, min_size=2, max_size=4, unique=True))
    ms = draw(st.integers(1_262_304_000_000, 1_893_456_000_000))
    messages, rows = [], []
    for _ in range(draw(st.integers(1, 14))):
        ms += draw(st.sampled_from((0, 1, 999, 60_000, 86_400_000)))
        sender = draw(st.sampled_from(people))
        message: dict[str, Any] = {"sender_name": mojibake(sender), "timestamp_ms": ms}
        shape = draw(st.sampled_from(("text", "text", "text", "call", *MESSENGER_MEDIA)))
        if shape == "text":
            text = draw(TEXT)
            message.update(content=mojibake(text), type="Generic")
            row = Row(_ms(ms), sender, text, "text")
        elif shape == "call":
            seconds = draw(st.integers(0, 4000))
            message.update(type="Call", call_duration=seconds)
            row = Row(_ms(ms), sender, f"[call {seconds} s]", "call")
        else:
            key, value, placeholder, kind = MESSENGER_MEDIA[shape]
            message.update({key: value, "type": "Generic"})
            row = Row(_ms(ms), sender, placeholder, kind)
        if draw(st.integers(0, 3)) == 0:  # reactions ride on a message and are no messages
            message["reactions"] = [
                {"reaction": mojibake("❤"), "actor": mojibake(draw(st.sampled_from(people)))}
            ]
        messages.append(message)
        rows.append(row)
    return messages, rows, people


def _ms(ms: int) -> datetime:
    """Milliseconds since the epoch as a UTC instant."""
    return datetime.fromtimestamp(ms / 1000, UTC)


@SETTINGS
@given(
    case=messenger_threads(),
    parts=st.integers(1, 3),
    thread_path=st.booleans(),
    app=st.sampled_from(("messenger", "instagram")),
)
def test_messenger_and_instagram_parts_read_back_every_message_as_written(
    tmp_path: Path,
    case: tuple[list[dict[str, Any]], list[Row], list[str]],
    parts: int,
    thread_path: bool,
    app: str,
) -> None:
    """Mojibake'd names and texts come back as the original text; each part's newest-first messages come
    out oldest first; every part of one thread is one conversation (by `thread_path`, else title and
    participants)."""
    messages, expected, people = case
    size = -(-len(messages) // parts)  # message_1.json holds the newest
    chunks = [
        messages[max(0, len(messages) - size * (i + 1)) : len(messages) - size * i] for i in range(parts)
    ]
    ids, got = set(), []
    for number, chunk in reversed(list(enumerate(chunks, start=1))):  # the oldest part first
        if not chunk:
            continue
        part: dict[str, Any] = {
            "participants": [{"name": mojibake(p)} for p in people],
            "messages": list(reversed(chunk)),
            "title": mojibake(people[0]),
            "is_still_participant": True,
            "magic_words": [],
        }
        if thread_path:
            part["thread_path"] = f"inbox/{'mom' if app == 'messenger' else 'mom_17841400'}_1234567890"
        path = tmp_path / f"message_{number}.json"
        path.write_text(json.dumps(part, indent=2), encoding="utf-8")  # ASCII escapes, as the apps write
        rows, family = _read(path)
        assert family == "messenger"
        ids |= {r["conversation_id"] for r in rows}
        got += _rows(rows)
    assert got == expected
    assert len(ids) == 1


# -- bugs found by the properties above -----------------------------------------------------------


def test_a_line_text_of_one_line_quoted_whole_is_one_message_as_written(tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    path.write_text(
        "[LINE] Chat history with Mom\nSaved on: 2024/01/03 09:00\n\n2024/01/01(Mon)\n"
        '09:00\tMom\t"Hi"\n'  # one line, written as is: its closing quote ends it
        "09:01\tMinsu\tyes\n",
        encoding="utf-8",
    )
    rows, _ = _read(path)
    assert [(r["speaker"], r["text"]) for r in rows] == [("Mom", '"Hi"'), ("Minsu", "yes")]


@pytest.mark.parametrize(
    "text", ['"The Road" was great', '"Hi mom', '"오늘" 너무 좋았어', '"" two quotes first']
)
def test_a_line_text_of_one_line_opening_a_quote_it_never_closes_is_one_message(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "chat.txt"
    path.write_text(
        "[LINE] Chat history with Mom\nSaved on: 2024/01/03 09:00\n\n2024/01/01(Mon)\n"
        f"09:00\tMom\t{text}\n09:01\tMinsu\tyes\n09:02\tMom\tsee you\n",
        encoding="utf-8",
    )
    rows, _ = _read(path)
    assert [(r["speaker"], r["text"]) for r in rows] == [("Mom", text), ("Minsu", "yes"), ("Mom", "see you")]


@pytest.mark.parametrize("sms_type", [3, 4, 5, 6])
def test_sms_the_owner_wrote_but_never_delivered_is_the_owners(tmp_path: Path, sms_type: int) -> None:
    path = tmp_path / "sms.xml"
    path.write_text(
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"2\">\n"
        '  <sms address="01098765432" date="1704067200000" type="1" body="어디야" contact_name="엄마" />\n'
        f'  <sms address="01098765432" date="1704067260000" type="{sms_type}" body="거의 다 왔어요" '
        'contact_name="엄마" />\n</smses>\n',
        encoding="utf-8",
    )
    rows, _ = _read(path)
    assert [(r["speaker"], r["text"]) for r in rows] == [("엄마", "어디야"), (SELF, "거의 다 왔어요")]


def test_an_mms_only_contact_speaks_by_the_contact_name_the_mms_carries(tmp_path: Path) -> None:
    path = tmp_path / "sms.xml"
    path.write_text(
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"1\">\n"
        '  <mms date="1704067200000" msg_box="1" address="01098765432" contact_name="아빠" read="1">\n'
        '    <parts><part seq="0" ct="text/plain" name="null" text="사진 보내마" /></parts>\n'
        '    <addrs><addr address="01098765432" type="137" charset="106" />\n'
        '      <addr address="+821055550000" type="151" charset="106" /></addrs>\n'
        "  </mms>\n</smses>\n",
        encoding="utf-8",
    )
    rows, _ = _read(path)
    assert [(r["speaker"], r["text"]) for r in rows] == [("아빠", "사진 보내마")]


def test_a_whole_account_export_reads_the_chats_the_owner_left_too(tmp_path: Path) -> None:
    def chat(number: int, name: str, text: str) -> dict[str, Any]:
        return {"name": name, "type": "private_group", "id": number, "messages": [
            {"id": 1, "type": "message", "date": "2024-01-01T09:00:00", "date_unixtime": "1704067200",
             "from": "엄마", "from_id": "user42", "text": text}]}  # fmt: skip

    account = {
        "about": "Here is the data you requested.",
        "personal_information": {"user_id": 7, "first_name": "민수"},
        "chats": {"about": "", "list": [chat(1, "가족", "밥 먹자")]},
        "left_chats": {"about": "", "list": [chat(2, "옛 동창", "잘 지내니")]},
    }
    path = tmp_path / "result.json"
    path.write_text(json.dumps(account, ensure_ascii=False, indent=1), encoding="utf-8")
    rows, _ = _read(path)
    assert [r["text"] for r in rows] == ["밥 먹자", "잘 지내니"]
