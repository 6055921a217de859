"""KakaoTalk line-based export variants, as data.

A variant is one `LineFormat` entry: regular expressions (RE2-compatible, also valid for Python's
`re`, so detection and the vectorised parser read the same patterns) plus a few flags. Adding a
variant means adding an entry here, a sample export under `tests/golden/` and its expected rows.

Named groups used by `record` and `day_marker`:
`y` year, `mon` month (number or English name), `d` day, `ampm` (오전/오후/AM/PM, empty on a
24-hour clock), `H` hour, `M` minute, `speaker` (empty on system events), `text`.
See ../shared/KAKAO_FORMATS.md for where each shape was seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from parsers.kakao.scan import Tok, alt, lit, num

_D4 = r"(?P<y>[0-9]{4})"
_MON_NUM = r"(?P<mon>[0-9]{1,2})"
_DAY = r"(?P<d>[0-9]{1,2})"
_MON_EN = (
    r"(?P<mon>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_WEEKDAY_EN = r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day"
_WEEKDAY_KO = r"[월화수목금토일]요일"
# Korean UI: "오후 3:04"; a 24-hour device clock drops the 오전/오후 word.
_TIME_KO = r"(?:(?P<ampm>오전|오후) )?(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})"
_TIME_EN = r"(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})(?: ?(?P<ampm>AM|PM|am|pm|a\.m\.|p\.m\.))?"
# Mobile tail: ", 이름 : 메시지" for a message, ", X님이 나갔습니다." (no " : ") for an event.
# The speaker ends at the first " : ": names with " : " are rare, message texts with it are not.
_TAIL_MOBILE = r", (?:(?P<speaker>.+?) :(?: |$))?(?P<text>.*)$"
# iOS events use "stamp: event" instead of "stamp, event".
_TAIL_IOS = r"(?:, (?:(?P<speaker>.+?) :(?: |$))?|: )(?P<text>.*)$"

# The same layouts as byte grammars for the vectorised scanner (parsers/kakao/scan.py); the
# regular expressions above serve detection and documentation, the round-trip tests keep the two
# in agreement.
_G_AMPM_KO = alt("ampm", (("오전 ", 1), ("오후 ", 2)), optional=True)
_G_TIME_KO: Final[tuple[Tok, ...]] = (_G_AMPM_KO, num("H", 1, 2), lit(":"), num("M", 2, 2))
_G_AMPM_EN = alt(
    "ampm",
    tuple(
        (space + word, value)
        for space in (" ", "")
        for word, value in (("AM", 1), ("PM", 2), ("am", 1), ("pm", 2), ("a.m.", 1), ("p.m.", 2))
    ),
    optional=True,
)
_G_TIME_EN: Final[tuple[Tok, ...]] = (num("H", 1, 2), lit(":"), num("M", 2, 2), _G_AMPM_EN)
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _month_options() -> tuple[tuple[str, int], ...]:
    options: list[tuple[str, int]] = []
    for number, name in enumerate(_MONTH_NAMES, start=1):
        options.append((name, number))  # full names before their abbreviations
        if number == 9:
            options.append(("Sept", 9))
        options.append((name[:3], number))
    return tuple(options)


_G_MONTH_EN = alt("mon", _month_options())
# iOS: ", " before a speaker (or an event), ": " before an event.
_G_IOS_SEP = alt("sep", ((", ", 1), (": ", 2)))

_SAVED_KO = r"^저장한 날짜 ?: .+$"
_SAVED_EN = r"^Date Saved ?: .+$"

# Windows PC exports write membership events without a time; they are recognised by phrase.
_TIMELESS_EVENTS_KO: Final[tuple[str, ...]] = (
    r"^.+님이 들어왔습니다\.$",
    r"^.+님이 나갔습니다\.$",
    r"^.+님을 내보냈습니다\.$",
    r"^.+님이 .+님(?:과 .+님)?을 초대(?:하였|했)습니다\.$",
    r"^.+님이 (?:부방장|방장)(?:이|으로) (?:되었습니다|지정되었습니다)\.$",
    r"^관리자만 말하기 기능이 (?:활성화|비활성화)되었습니다\.$",
    r"^운영정책을 위반한 메시지로 .+$",
    r"^타인, 기관 등의 사칭에 유의해 주세요\..*$",
    r"^채팅방 관리자가 메시지를 가렸습니다\.$",
)
_TIMELESS_EVENTS_EN: Final[tuple[str, ...]] = (
    r"^.+ joined this chatroom\.$",
    r"^.+ left this chatroom\.$",
    r"^.+ left\.$",
    r"^.+ invited .+\.$",
    r"^.+ has been removed from (?:the|this) chatroom\.$",
    r"^.+ was kicked from (?:the|this) chatroom\.$",
)


@dataclass(frozen=True)
class LineFormat:
    """One line-oriented KakaoTalk export variant."""

    name: str
    source: str
    language: str
    #: A message or stamped system event (one line; continuation lines follow it).
    record: str
    #: Date separator line; when `date_from_marker`, records carry only a time.
    day_marker: str | None
    #: Title lines before the first message; group `room` names the conversation.
    titles: tuple[str, ...]
    #: Other header lines (the saved-at line, the iOS file-name line).
    preamble: tuple[str, ...]
    date_from_marker: bool = False
    timeless_events: tuple[str, ...] = ()
    #: Kind of a message with an empty body (Android 2018 writes emoticons that way).
    empty_text_kind: str = "text"
    #: Prefix of a record; a last line that matches it but not `record` was cut off.
    record_start: str = ""
    #: `record`'s timestamp as a byte grammar (for mobile layouts, up to and including ", ").
    stamp: tuple[Tok, ...] = ()
    #: What follows the stamp: "mobile" (speaker " : " text, or an event), "ios" (mobile, or
    #: ": " event), "pc" (the stamp is the time inside "[name] [time] text").
    tail: str = "mobile"


LINE_FORMATS: Final[tuple[LineFormat, ...]] = (
    LineFormat(
        name="pc_ko",
        source="kakao_pc_txt",
        language="ko",
        record=r"^\[(?P<speaker>.+?)\] \[" + _TIME_KO + r"\](?: (?P<text>.*))?$",
        day_marker=r"^-{3,} " + _D4 + r"년 " + _MON_NUM + r"월 " + _DAY + r"일 " + _WEEKDAY_KO + r" -{3,}$",
        titles=(r"^(?P<room>.+?) 님과 카카오톡 대화$", r"^(?P<room>.+?) 카카오톡 대화$"),
        preamble=(_SAVED_KO,),
        date_from_marker=True,
        timeless_events=_TIMELESS_EVENTS_KO,
        record_start=r"^\[[^\]]*$|^\[.+?\] \[[^\]]*$",
        stamp=_G_TIME_KO,
        tail="pc",
    ),
    LineFormat(
        name="pc_en",
        source="kakao_pc_txt",
        language="en",
        record=r"^\[(?P<speaker>.+?)\] \[" + _TIME_EN + r"\](?: (?P<text>.*))?$",
        day_marker=r"^-{3,} " + _WEEKDAY_EN + ", " + _MON_EN + " " + _DAY + ", " + _D4 + r" -{3,}$",
        titles=(r"^(?P<room>.+?) with KakaoTalk Chats$", r"^KakaoTalk Chats with (?P<room>.+)$"),
        preamble=(_SAVED_EN,),
        date_from_marker=True,
        timeless_events=_TIMELESS_EVENTS_EN,
        record_start=r"^\[[^\]]*$|^\[.+?\] \[[^\]]*$",
        stamp=_G_TIME_EN,
        tail="pc",
    ),
    LineFormat(
        name="android_ko",
        source="kakao_android_txt",
        language="ko",
        record=r"^" + _D4 + "년 " + _MON_NUM + "월 " + _DAY + "일 " + _TIME_KO + _TAIL_MOBILE,
        day_marker=r"^" + _D4 + "년 " + _MON_NUM + "월 " + _DAY + "일 " + _TIME_KO + "$",
        titles=(r"^(?P<room>.+?) 님과 카카오톡 대화$", r"^(?P<room>.+?) [0-9]+ 카카오톡 대화$"),
        preamble=(_SAVED_KO,),
        empty_text_kind="emoticon",
        record_start=r"^[0-9]{4}년 [0-9]{1,2}월 [0-9]{1,2}일",
        stamp=(
            num("y", 4, 4),
            lit("년 "),
            num("mon", 1, 2),
            lit("월 "),
            num("d", 1, 2),
            lit("일 "),
            *_G_TIME_KO,
            lit(", "),
        ),
    ),
    LineFormat(
        name="android_en",
        source="kakao_android_txt",
        language="en",
        record=r"^" + _MON_EN + " " + _DAY + ", " + _D4 + ", " + _TIME_EN + _TAIL_MOBILE,
        day_marker=r"^" + _MON_EN + " " + _DAY + ", " + _D4 + ", " + _TIME_EN + "$",
        titles=(r"^KakaoTalk Chats with (?P<room>.+)$",),
        preamble=(_SAVED_EN,),
        empty_text_kind="emoticon",
        record_start=r"^[A-Z][a-z]+ [0-9]{1,2}, [0-9]{4}",
        stamp=(
            _G_MONTH_EN,
            lit(" "),
            num("d", 1, 2),
            lit(", "),
            num("y", 4, 4),
            lit(", "),
            *_G_TIME_EN,
            lit(", "),
        ),
    ),
    LineFormat(
        name="android_en_gb",
        source="kakao_android_txt",
        language="en",
        record=r"^" + _DAY + " " + _MON_EN + " " + _D4 + ", " + _TIME_EN + _TAIL_MOBILE,
        day_marker=r"^" + _DAY + " " + _MON_EN + " " + _D4 + ", " + _TIME_EN + "$",
        titles=(r"^KakaoTalk Chats with (?P<room>.+)$",),
        preamble=(_SAVED_EN,),
        empty_text_kind="emoticon",
        record_start=r"^[0-9]{1,2} [A-Z][a-z]+ [0-9]{4}",
        stamp=(
            num("d", 1, 2),
            lit(" "),
            _G_MONTH_EN,
            lit(" "),
            num("y", 4, 4),
            lit(", "),
            *_G_TIME_EN,
            lit(", "),
        ),
    ),
    LineFormat(
        name="ios_ko",
        source="kakao_ios_txt",
        language="ko",
        record=r"^" + _D4 + r"\. " + _MON_NUM + r"\. " + _DAY + r"\. " + _TIME_KO + _TAIL_IOS,
        day_marker=r"^" + _D4 + "년 " + _MON_NUM + "월 " + _DAY + "일 " + _WEEKDAY_KO + "$",
        titles=(r"^(?P<room>.+?) 님과 카카오톡 대화$", r"^(?P<room>.+?) [0-9]+ 카카오톡 대화$"),
        preamble=(_SAVED_KO, r"^Talk_.*\.txt$"),
        record_start=r"^[0-9]{4}\. [0-9]{1,2}\. [0-9]{1,2}\.",
        stamp=(
            num("y", 4, 4),
            lit(". "),
            num("mon", 1, 2),
            lit(". "),
            num("d", 1, 2),
            lit(". "),
            *_G_TIME_KO,
            _G_IOS_SEP,
        ),
        tail="ios",
    ),
    LineFormat(
        name="ios_en",
        source="kakao_ios_txt",
        language="en",
        record=r"^" + _MON_EN + " " + _DAY + ", " + _D4 + "(?: at)? " + _TIME_EN + _TAIL_IOS,
        day_marker=r"^" + _WEEKDAY_EN + ", " + _MON_EN + " " + _DAY + ", " + _D4 + "$",
        titles=(r"^KakaoTalk Chats with (?P<room>.+)$",),
        preamble=(_SAVED_EN, r"^Talk_.*\.txt$"),
        record_start=r"^[A-Z][a-z]+ [0-9]{1,2}, [0-9]{4}",
        stamp=(
            _G_MONTH_EN,
            lit(" "),
            num("d", 1, 2),
            lit(", "),
            num("y", 4, 4),
            alt("", ((" at ", 0), (" ", 0))),
            *_G_TIME_EN,
            _G_IOS_SEP,
        ),
        tail="ios",
    ),
)

#: The macOS PC export is a CSV; these are the header rows it has been seen with.
CSV_HEADERS: Final[tuple[tuple[str, str, str], ...]] = (
    ("Date", "User", "Message"),
    ("날짜", "사용자", "메시지"),
)
CSV_SOURCE: Final = "kakao_mac_csv"
CSV_FORMAT_NAME: Final = "mac_csv"

#: Phrases that make a CSV row a system event (the Mac export has no separate event layout).
CSV_EVENT_PATTERNS: Final[tuple[str, ...]] = _TIMELESS_EVENTS_KO + _TIMELESS_EVENTS_EN

FORMATS_BY_NAME: Final[dict[str, LineFormat]] = {f.name: f for f in LINE_FORMATS}
ALL_FORMAT_NAMES: Final[tuple[str, ...]] = (*FORMATS_BY_NAME, CSV_FORMAT_NAME)

MONTHS_EN: Final[tuple[str, ...]] = (
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
)  # fmt: skip
