"""KakaoTalk line-based export variants, as data.

A variant is one `LineFormat` entry. Its timestamp layout is written once, as a small byte
grammar (`stamp`, tokens from parsers/kakao/scan.py) that the vectorised scanner runs over every
line at once; the regular expressions used for detection and for the rare non-record lines are
derived from the same tokens. Adding a variant means adding an entry here, a sample export under
`tests/golden/` and its expected rows. See ../shared/KAKAO_FORMATS.md for where each shape was seen.

Named tokens/groups: `y` year, `mon` month, `d` day, `ampm` (0 none, 1 AM/오전, 2 PM/오후),
`H` hour, `M` minute, `sep` (iOS: 1 ", ", 2 ": "); derived record regexes add `speaker`, `text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from parsers.kakao.scan import Tok, alt, lit, num, to_regex

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


# Korean UI: "오후 3:04"; a 24-hour device clock drops the 오전/오후 word.
_TIME_KO: Final[tuple[Tok, ...]] = (
    alt("ampm", (("오전 ", 1), ("오후 ", 2)), optional=True),
    num("H", 1, 2),
    lit(":"),
    num("M", 2, 2),
)
_AMPM_EN_WORDS = (("AM", 1), ("PM", 2), ("am", 1), ("pm", 2), ("a.m.", 1), ("p.m.", 2))
_TIME_EN: Final[tuple[Tok, ...]] = (
    num("H", 1, 2),
    lit(":"),
    num("M", 2, 2),
    alt("ampm", tuple((space + w, v) for space in (" ", "") for w, v in _AMPM_EN_WORDS), optional=True),
)
_MONTH_EN = alt("mon", _month_options())
_YEAR = num("y", 4, 4)
_DAY = num("d", 1, 2)
#: "2024년 7월 5일 "
_DATE_KO: Final[tuple[Tok, ...]] = (_YEAR, lit("년 "), num("mon", 1, 2), lit("월 "), _DAY, lit("일 "))
#: "March 3, 2018"
_DATE_EN_US: Final[tuple[Tok, ...]] = (_MONTH_EN, lit(" "), _DAY, lit(", "), _YEAR)
#: "9 June 2021"
_DATE_EN_GB: Final[tuple[Tok, ...]] = (_DAY, lit(" "), _MONTH_EN, lit(" "), _YEAR)
#: iOS: ", " before a speaker (or an event), ": " before an event.
_IOS_SEP = alt("sep", ((", ", 1), (": ", 2)))

_WEEKDAY_EN = r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day"
_WEEKDAY_KO = r"[월화수목금토일]요일"
_SAVED_KO = r"^저장한 날짜 ?: .+$"
_SAVED_EN = r"^Date Saved ?: .+$"
_TITLES_KO = (r"^(?P<room>.+?) 님과 카카오톡 대화$", r"^(?P<room>.+?) [0-9]+ 카카오톡 대화$")
_TITLES_EN = (r"^KakaoTalk Chats with (?P<room>.+)$",)

# What follows a mobile stamp: "이름 : 메시지", or an event without " : ". The speaker ends at
# the first " :" before a space or the line end (names with " : " are rare, texts with it not).
_SPEAKER_TEXT = r"(?:(?P<speaker>.+?) :(?: |$))?(?P<text>.*)$"

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
    #: The record's timestamp as a byte grammar (mobile: up to and including ", ").
    stamp: tuple[Tok, ...]
    #: Date separator line (a regex); when `date_from_marker`, records carry only a time.
    day_marker: str | None
    #: Title lines before the first message; group `room` names the conversation.
    titles: tuple[str, ...]
    #: Other header lines (the saved-at line, the iOS file-name line).
    preamble: tuple[str, ...]
    #: What follows the stamp: "mobile" (speaker " : " text, or an event), "ios" (the same after
    #: ", ", an event after ": "), "pc" (the stamp is the time inside "[name] [time] text").
    tail: str = "mobile"
    date_from_marker: bool = False
    timeless_events: tuple[str, ...] = ()
    #: Kind of a message with an empty body (Android 2018 writes emoticons that way).
    empty_text_kind: str = "text"

    @property
    def record(self) -> str:
        """A message or stamped event line, as a regex derived from `stamp` (for detection)."""
        if self.tail == "pc":
            return r"^\[(?P<speaker>.+?)\] \[" + to_regex(self.stamp) + r"\](?: (?P<text>.*))?$"
        return "^" + to_regex(self.stamp) + _SPEAKER_TEXT

    @property
    def record_start(self) -> str:
        """Prefix of a record: a last line that matches it but not `record` was cut off."""
        if self.tail == "pc":
            return r"^\[[^\]]*$|^\[.+?\] \[[^\]]*$"
        date_part = []
        for tok in self.stamp:
            if tok.name in ("ampm", "H"):
                break
            date_part.append(tok)
        return "^" + to_regex(tuple(date_part))


LINE_FORMATS: Final[tuple[LineFormat, ...]] = (
    LineFormat(
        name="pc_ko",
        source="kakao_pc_txt",
        language="ko",
        stamp=_TIME_KO,
        tail="pc",
        day_marker=r"^-{3,} " + to_regex(_DATE_KO) + _WEEKDAY_KO + r" -{3,}$",
        titles=(r"^(?P<room>.+?) 님과 카카오톡 대화$", r"^(?P<room>.+?) 카카오톡 대화$"),
        preamble=(_SAVED_KO,),
        date_from_marker=True,
        timeless_events=_TIMELESS_EVENTS_KO,
    ),
    LineFormat(
        name="pc_en",
        source="kakao_pc_txt",
        language="en",
        stamp=_TIME_EN,
        tail="pc",
        day_marker=r"^-{3,} " + _WEEKDAY_EN + ", " + to_regex(_DATE_EN_US) + r" -{3,}$",
        titles=(r"^(?P<room>.+?) with KakaoTalk Chats$", *_TITLES_EN),
        preamble=(_SAVED_EN,),
        date_from_marker=True,
        timeless_events=_TIMELESS_EVENTS_EN,
    ),
    LineFormat(
        name="android_ko",
        source="kakao_android_txt",
        language="ko",
        stamp=(*_DATE_KO, *_TIME_KO, lit(", ")),
        # The day marker is a bare stamp: the day's first record time.
        day_marker="^" + to_regex((*_DATE_KO, *_TIME_KO)) + "$",
        titles=_TITLES_KO,
        preamble=(_SAVED_KO,),
        empty_text_kind="emoticon",
    ),
    LineFormat(
        name="android_en",
        source="kakao_android_txt",
        language="en",
        stamp=(*_DATE_EN_US, lit(", "), *_TIME_EN, lit(", ")),
        day_marker="^" + to_regex((*_DATE_EN_US, lit(", "), *_TIME_EN)) + "$",
        titles=_TITLES_EN,
        preamble=(_SAVED_EN,),
        empty_text_kind="emoticon",
    ),
    LineFormat(
        name="android_en_gb",
        source="kakao_android_txt",
        language="en",
        stamp=(*_DATE_EN_GB, lit(", "), *_TIME_EN, lit(", ")),
        day_marker="^" + to_regex((*_DATE_EN_GB, lit(", "), *_TIME_EN)) + "$",
        titles=_TITLES_EN,
        preamble=(_SAVED_EN,),
        empty_text_kind="emoticon",
    ),
    LineFormat(
        name="ios_ko",
        source="kakao_ios_txt",
        language="ko",
        stamp=(_YEAR, lit(". "), num("mon", 1, 2), lit(". "), _DAY, lit(". "), *_TIME_KO, _IOS_SEP),
        tail="ios",
        day_marker="^" + to_regex(_DATE_KO) + _WEEKDAY_KO + "$",
        titles=_TITLES_KO,
        preamble=(_SAVED_KO, r"^Talk_.*\.txt$"),
    ),
    LineFormat(
        name="ios_en",
        source="kakao_ios_txt",
        language="en",
        # "Jan 11, 2023 6:34 PM, " and the newer "Feb 1, 2026 at 20:35, "
        stamp=(*_DATE_EN_US, alt("", ((" at ", 0), (" ", 0))), *_TIME_EN, _IOS_SEP),
        tail="ios",
        day_marker="^" + _WEEKDAY_EN + ", " + to_regex(_DATE_EN_US) + "$",
        titles=_TITLES_EN,
        preamble=(_SAVED_EN, r"^Talk_.*\.txt$"),
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
