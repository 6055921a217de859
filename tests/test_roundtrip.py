"""Property: any conversation rendered in any variant parses back to the same messages."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from parsers.base import ParseContext
from parsers.exports import inspect_export, iter_batches
from parsers.kakao.formats import FORMATS_BY_NAME
from parsers.kakao.render import Line, RenderOptions, render_export

ZONE = "Asia/Seoul"
FORMATS = (*FORMATS_BY_NAME, "mac_csv")
TRICKY_NAMES = (
    "엄마",
    "홍 길동",
    "김민준/94/늑 대#1003",
    "이름 [괄호]",
    "(회사) 박 과장",
    "1004천사",
    "Mom",
    "you",
    "회원님",
    "😀 스마일",
    "A.B",
)
PLACEHOLDERS = {
    "사진": "photo",
    "사진 3장": "photo",
    "Photo": "photo",
    "이모티콘": "emoticon",
    "동영상": "video",
    "파일: a.pdf": "file",
    "음성메시지": "voice",
    "보이스톡 0:17": "call",
    "삭제된 메시지입니다.": "deleted",
    "샵검색: #날씨": "search",
}
# Syllables and symbols that never spell a placeholder; ':' '[' ']' ',' are the separators' own.
TEXT_ALPHABET = "가나다라마바하늘별ㅋㅎ abcXYZ019:[],.!?~-#/()😀❤️"
EVENT_TEMPLATES_KO = ("{}님이 들어왔습니다.", "{}님이 나갔습니다.", "{}님을 내보냈습니다.")
EVENT_TEMPLATES_EN = ("{} joined this chatroom.", "{} left.", "{} invited Kim.")

name_strategy = st.one_of(
    st.sampled_from(TRICKY_NAMES),
    st.text(alphabet="가나다라마바사아자 abcXYZ019()#/.😀", min_size=1, max_size=12)
    .map(str.strip)
    .filter(bool),
)
line_strategy = st.text(alphabet=TEXT_ALPHABET, min_size=0, max_size=30)


@st.composite
def text_strategy(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(sorted(PLACEHOLDERS)))
    lines = draw(st.lists(line_strategy, min_size=1, max_size=3))
    if len(lines) > 1:
        assume(lines[-1] != "")  # trailing empty lines are not kept by the parser
    return "\n".join(lines)


@st.composite
def conversation_strategy(draw: st.DrawFn) -> tuple[str, RenderOptions, list[Line], str]:
    fmt = draw(st.sampled_from(FORMATS))
    options = RenderOptions(
        room=draw(st.sampled_from(("엄마", "Mom", "가족 단톡방"))),
        clock24=draw(st.booleans()),
        crlf=draw(st.booleans()),
        ios_at=draw(st.booleans()),
    )
    names = draw(st.lists(name_strategy, min_size=1, max_size=4, unique=True))
    ts = datetime(2011, 1, 1) + timedelta(minutes=draw(st.integers(0, 10_000_000)))
    lines: list[Line] = []
    for _ in range(draw(st.integers(1, 25))):
        ts += timedelta(minutes=draw(st.sampled_from((0, 1, 7, 59, 600, 1440, 4000))))
        if fmt == "mac_csv":
            ts = ts.replace(second=draw(st.integers(0, 59)))
        if draw(st.integers(0, 7)) == 0:
            english = fmt != "mac_csv" and FORMATS_BY_NAME[fmt].language == "en"
            template = draw(st.sampled_from(EVENT_TEMPLATES_EN if english else EVENT_TEMPLATES_KO))
            lines.append(Line(ts, None, template.format(draw(st.sampled_from(names)))))
        else:
            lines.append(Line(ts, draw(st.sampled_from(names)), draw(text_strategy())))
    encoding = draw(st.sampled_from(("utf-8", "utf-8-sig", "utf-16", "cp949")))
    return fmt, options, lines, encoding


def _expected(fmt: str, lines: list[Line]) -> list[tuple[str, str | None, str, str]]:
    out = []
    previous_record: datetime | None = None
    for line in lines:
        ts = line.ts
        if line.speaker is None and fmt.startswith("pc_"):
            # Windows writes events without a time: they take the previous message's time, not
            # earlier than their own day.
            midnight = datetime.combine(ts.date(), datetime.min.time())
            ts = max(previous_record, midnight) if previous_record else midnight
        if line.speaker is not None:
            previous_record = ts
        if line.speaker is None:
            kind = "system"
        elif line.text in PLACEHOLDERS:
            kind = PLACEHOLDERS[line.text]
        elif line.text == "" and fmt.startswith("android"):
            kind = "emoticon"
        else:
            kind = "text"
        out.append((ts.isoformat(), line.speaker, line.text, kind))
    return out


def _lf_only_conflicts(fmt: str, lines: list[Line]) -> bool:
    """Without the CRLF hint a continuation line that looks like a header is ambiguous by nature."""
    if fmt == "mac_csv":
        return False
    spec = FORMATS_BY_NAME[fmt]
    patterns = [spec.record, *(p for p in [spec.day_marker] if p), *spec.timeless_events]
    return any(
        re.match(pattern, continuation)
        for line in lines
        for continuation in line.text.split("\n")[1:]
        for pattern in patterns
    )


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conversation_strategy(), chunk_bytes=st.sampled_from((37, 256, 8 * 1024 * 1024)))
def test_render_then_parse_is_identity(
    tmp_path: Path, case: tuple[str, RenderOptions, list[Line], str], chunk_bytes: int
) -> None:
    fmt, options, lines, encoding = case
    if not options.crlf:
        assume(not _lf_only_conflicts(fmt, lines))
    text = render_export(fmt, lines, options)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")  # CP949 has no emoji; such chats are never saved in it
    path = tmp_path / f"export-{fmt}.txt"
    path.write_bytes(data)

    info = inspect_export(path)
    assert info.format_name == fmt
    ctx = ParseContext("o", "u", path.name, info.sha256, info.conversation_id, ZONE)
    parsed = []
    for batch in iter_batches(info, ctx, chunk_bytes=chunk_bytes):
        assert batch.quarantine.num_rows == 0, batch.quarantine.to_pylist()
        table = batch.messages
        local = table.column("ts").cast(pa.timestamp("us", tz=ZONE)).to_pylist()
        for row, ts in zip(table.to_pylist(), local, strict=True):
            parsed.append((ts.replace(tzinfo=None).isoformat(), row["speaker"], row["text"], row["kind"]))
    assert parsed == _expected(fmt, lines)
