"""Placeholder texts to kinds, and the first-character prefilter that must never hide one."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from parsers.firstchars import first_chars
from parsers.kakao.kinds import KIND_PATTERNS, classify_kinds
from schemas.message import MESSAGE_KINDS

CASES = {
    "사진": "photo",
    "사진 12장": "photo",
    "<사진 읽지 않음>": "photo",
    "Photo": "photo",
    "3 photos": "photo",
    "동영상": "video",
    "이모티콘": "emoticon",
    "(이모티콘)": "emoticon",
    "Emoticons": "emoticon",
    "파일: 보고서 최종.hwp": "file",
    "File: x.zip": "file",
    "음성메시지": "voice",
    "Voice Note": "voice",
    "보이스톡 해요": "call",
    "보이스톡 0:17": "call",
    "부재중 페이스톡": "call",
    "Voice Call 1:05": "call",
    "Missed Voice Call": "call",
    "삭제된 메시지입니다.": "deleted",
    "This message was deleted.": "deleted",
    "채팅방 관리자가 메시지를 가렸습니다.": "hidden",
    "5,000원을 보냈어요.\n\n받기 전까지 송금을 취소할 수 있어요.": "transfer",
    "받기 완료!": "transfer",
    "정산하기를 요청했어요": "transfer",
    "샵검색: #날씨": "search",
    "지도: 서울역\n서울 중구": "location",
    "여기서 만나 https://map.kakao.com/?q=x": "location",
    "연락처: 이모": "contact",
    "톡게시판 '공지': 내일 모임": "system",
    "사진 보내줘": "text",
    "동영상 봤어?": "text",
    "https://naver.me/abc": "text",
    "ㅋㅋㅋ": "text",
    "": "text",
}


def _first(text: str) -> int:
    return ord(text[0]) if text else -1


@pytest.mark.parametrize("with_prefilter", [False, True])
def test_placeholders_map_to_kinds(with_prefilter: bool) -> None:
    texts = list(CASES)
    firsts = np.array([_first(t) for t in texts]) if with_prefilter else None
    codes = classify_kinds(pa.array(texts, pa.string()), first_codepoints=firsts)
    assert {t: MESSAGE_KINDS[c] for t, c in zip(texts, codes, strict=True)} == CASES


def test_empty_body_kind_is_per_format() -> None:
    codes = classify_kinds(pa.array(["", "x"]), empty_text_kind="emoticon")
    assert [MESSAGE_KINDS[c] for c in codes] == ["emoticon", "text"]


def test_every_kind_pattern_has_a_bounded_first_set() -> None:
    # If a pattern ever became unbounded, the prefilter would silently switch off (slow, not
    # wrong); this keeps the fast path honest.
    for kind, pattern in KIND_PATTERNS:
        chars = first_chars(pattern)
        assert chars, kind


def test_first_chars_is_conservative() -> None:
    assert first_chars(r"^(?:ab|[0-9]x)") == frozenset(map(ord, "a0123456789"))
    assert first_chars(r"^(?:ab|cd)") == frozenset({ord("a"), ord("c")})
    assert first_chars(r"^(?:x)?y") == frozenset({ord("x"), ord("y")})
    assert first_chars(r"^.*a") is None  # `.` is unbounded
    assert first_chars(r"^(?:a)?") is None  # may match empty: cannot prefilter
    assert first_chars(r"^[^a]b") is None  # negated class
