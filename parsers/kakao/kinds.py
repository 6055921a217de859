"""Map KakaoTalk placeholder texts (사진, 이모티콘, 보이스톡 0:17, ...) to the Message `kind` vocabulary.

The table is data: one entry per kind, a pattern that must match the whole message text (or its
start, for the multi-line KakaoPay notices). Order matters: the first matching kind wins.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from parsers.arrays import bool_mask, int64_values
from parsers.firstchars import first_chars
from schemas.message import MESSAGE_KINDS

KIND_CODE: Final[dict[str, int]] = {kind: code for code, kind in enumerate(MESSAGE_KINDS)}

KIND_PATTERNS: Final[tuple[tuple[str, str], ...]] = (
    (
        "photo",
        r"^(?:사진|사진 [0-9]+장|<사진 읽지 않음>|Photo|Photos|[0-9]+ [Pp]hotos|<Photo>|<Photo not downloaded>)$",
    ),
    ("video", r"^(?:동영상|<동영상 읽지 않음>|Video|<Video>)$"),
    ("emoticon", r"^(?:이모티콘|\(이모티콘\)|<이모티콘>|Emoticons?|\(Emoticon\))$"),
    ("file", r"^(?:파일|File): .+$"),
    ("voice", r"^(?:음성메시지|음성 메시지|Voice Note|Voice [Mm]essage)(?: [0-9:]+)?$"),
    (
        "call",
        r"^(?:(?:부재중 |취소된 )?(?:보이스톡|페이스톡)(?: .*)?|(?:Missed |Canceled |Cancelled )?"
        r"(?:Voice Call|Video Call|Voice Talk|Face Talk|FaceTalk)(?: .*)?)$",
    ),
    (
        "deleted",
        r"^(?:삭제된 메시지입니다\.|메시지가 삭제되었습니다\.|Deleted [Mm]essage\.?|This message was deleted\.|Message deleted\.)$",
    ),
    (
        "hidden",
        r"^(?:(?:채팅방 )?관리자가 메시지를 가렸습니다\.|This message (?:has been|was) hidden by (?:the )?"
        r"(?:chatroom )?(?:manager|admin|host)\.)$",
    ),
    (
        "transfer",
        r"^(?:[0-9,]+원을 (?:보냈어요|받았어요)|[0-9,]+원 (?:받기 완료|송금)|받기 완료!|송금 [0-9,]+원"
        r"|정산하기를 요청했어요|송금봉투|Sent [0-9,]+ ?(?:KRW|won)|Received [0-9,]+ ?(?:KRW|won))",
    ),
    ("search", r"^(?:샵검색|#검색|#Search) ?: "),
    ("location", r"^(?:지도|위치|Location|Map) ?: "),
    ("contact", r"^(?:연락처|Contact) ?: "),
    ("system", r"^(?:톡게시판 '공지'|Chat Board 'Notice'): "),
)

#: Kinds recognised by a plain substring anywhere in the text (cheap, no regex).
KIND_SUBSTRINGS: Final[tuple[tuple[str, str], ...]] = (("location", "map.kakao.com/"),)

# Every pattern is anchored at the start, so RE2's DFA rejects an ordinary text within a few bytes.
_ANY_KIND: Final = "|".join(f"(?:{pattern})" for _, pattern in KIND_PATTERNS)
# The same alternation with one named group per kind: RE2 takes the first alternative that
# matches, so the one non-empty group names the kind, in table order.
_WHICH_KIND: Final = "|".join(f"(?P<{kind}>{pattern})" for kind, pattern in KIND_PATTERNS)


def kinds_to_arrow(codes: np.ndarray) -> pa.Array:
    """Turn kind codes (indices into MESSAGE_KINDS) into a string column without Python objects."""
    vocab = pa.array(MESSAGE_KINDS, pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), vocab).cast(pa.string())


_LUT_SIZE: Final = 0x10000


def _first_table() -> np.ndarray | None:
    """Lookup table over the Basic Multilingual Plane: may a placeholder start with this char."""
    sets = [first_chars(pattern) for _, pattern in KIND_PATTERNS]
    if any(s is None or max(s) >= _LUT_SIZE for s in sets):
        return None
    table = np.zeros(_LUT_SIZE, dtype=bool)
    for chars in sets:
        table[list(chars or ())] = True
    return table


#: Code points a placeholder can start with (derived from the patterns themselves).
_FIRST: Final = _first_table()


def classify_kinds(
    texts: pa.Array, empty_text_kind: str = "text", first_codepoints: np.ndarray | None = None
) -> np.ndarray:
    """Return the kind code (index into MESSAGE_KINDS) of each message text.

    With `first_codepoints` (each text's first code point, -1 when empty) a numpy set test keeps
    only the texts a placeholder could start with; one fast pass (a match, no captures) narrows
    them further, and one extraction over those says which kind matched.
    """
    n = len(texts)
    kinds = np.full(n, KIND_CODE["text"], dtype=np.int8)
    if n == 0:
        return kinds
    if first_codepoints is not None and _FIRST is not None:
        in_plane = (first_codepoints >= 0) & (first_codepoints < _LUT_SIZE)
        maybe = np.flatnonzero(_FIRST[np.where(in_plane, first_codepoints, 0)] & in_plane)
        candidates = maybe
        if len(maybe):
            candidates = maybe[bool_mask(pc.match_substring_regex(texts.take(pa.array(maybe)), _ANY_KIND))]
    else:
        candidates = np.flatnonzero(bool_mask(pc.match_substring_regex(texts, _ANY_KIND)))
    if len(candidates):
        found = pc.extract_regex(texts.take(pa.array(candidates)), _WHICH_KIND)
        undecided = np.ones(len(candidates), dtype=bool)
        for kind, _ in KIND_PATTERNS:
            matched = bool_mask(pc.not_equal(found.field(kind), ""))
            hit = matched & undecided
            kinds[candidates[hit]] = KIND_CODE[kind]
            undecided &= ~hit
    for kind, needle in KIND_SUBSTRINGS:
        hit = bool_mask(pc.match_substring(texts, needle)) & (kinds == KIND_CODE["text"])
        kinds[hit] = KIND_CODE[kind]
    if empty_text_kind != "text":
        empty = int64_values(pc.binary_length(texts), 0) == 0
        kinds[empty] = KIND_CODE[empty_text_kind]
    return kinds
