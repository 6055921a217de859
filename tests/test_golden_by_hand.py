"""Exports and their expected rows, both written by hand from ../shared/KAKAO_FORMATS.md.

The files under tests/golden/ are checked against expectations that the parser once wrote (and a
person reviewed); these are not. Each export below was typed from the format table (title, saved
line, day marker, record and event shapes, CRLF records, bare-LF continuations), and each expected
row was worked out from the rules there, not from the parser's output: 오전 12:47 is 00:47 and
오후 12:27 is 12:27, the speaker ends at the first ` : ` after the stamp, continuation lines may
look like dates or records, a Windows event without a time takes the previous record's time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.golden_support import parse_golden

#: (local time, speaker, text, kind); `None` speaker: a system event.
Row = tuple[str, str | None, str, str]

CASES: dict[str, tuple[str, str, str, list[Row]]] = {
    "android_ko": (
        "android_ko",
        "외할머니.txt",
        (
            "외할머니 님과 카카오톡 대화\r\n"
            "저장한 날짜 : 2023년 12월 31일 오후 11:02\r\n"
            "\r\n"
            "2023년 12월 30일 오전 12:05\r\n"
            "2023년 12월 30일 오전 12:05, 외할머니 : 아직 안 자니\r\n"
            "2023년 12월 30일 오전 12:07, 손녀 (서울) : 곧 잘게요 : 할머니도 주무세요\r\n"
            "2023년 12월 30일 오후 12:00, 외할머니 : 점심은\n"
            "2023년 12월 31일 오전 9:00 에 병원 간다\n"
            "잊지 마라\r\n"
            "2023년 12월 30일 오후 1:30, 손녀 (서울) : 사진 2장\r\n"
            "2023년 12월 30일 오후 1:31, 손녀 (서울)님이 나갔습니다.\r\n"
            "2023년 12월 31일 오후 10:59\r\n"
            "2023년 12월 31일 오후 10:59, 외할머니 : 보이스톡 해요\r\n"
        ),
        [
            ("2023-12-30T00:05", "외할머니", "아직 안 자니", "text"),
            ("2023-12-30T00:07", "손녀 (서울)", "곧 잘게요 : 할머니도 주무세요", "text"),
            (
                "2023-12-30T12:00",
                "외할머니",
                "점심은\n2023년 12월 31일 오전 9:00 에 병원 간다\n잊지 마라",
                "text",
            ),
            ("2023-12-30T13:30", "손녀 (서울)", "사진 2장", "photo"),
            ("2023-12-30T13:31", None, "손녀 (서울)님이 나갔습니다.", "system"),
            ("2023-12-31T22:59", "외할머니", "보이스톡 해요", "call"),
        ],
    ),
    "ios_ko": (
        "ios_ko",
        "Talk_2025.1.2 08:15-1.txt",
        (
            "Talk_2025.1.2 08:15-1.txt\r\n"
            "저장한 날짜 : 2025. 1. 2. 오전 8:15\r\n"
            "\r\n"
            "2025년 1월 1일 수요일\r\n"
            "2025. 1. 1. 오전 12:00, 아빠 : 새해 복 많이 받아라\r\n"
            "2025. 1. 1. 오전 12:01: 아빠님이 큰딸님을 초대했습니다.\r\n"
            "2025. 1. 1. 오전 12:02, 큰딸 : 아빠도요\n"
            "[사랑해요]\n"
            "\r\n"
            "2025년 1월 2일 목요일\r\n"
            "2025. 1. 2. 오전 7:59, 아빠 : 이모티콘\r\n"
            "2025. 1. 2. 오후 12:59, 큰딸 : 삭제된 메시지입니다.\r\n"
        ),
        [
            ("2025-01-01T00:00", "아빠", "새해 복 많이 받아라", "text"),
            ("2025-01-01T00:01", None, "아빠님이 큰딸님을 초대했습니다.", "system"),
            ("2025-01-01T00:02", "큰딸", "아빠도요\n[사랑해요]", "text"),
            ("2025-01-02T07:59", "아빠", "이모티콘", "emoticon"),
            ("2025-01-02T12:59", "큰딸", "삭제된 메시지입니다.", "deleted"),
        ],
    ),
    "pc_en": (
        "pc_en",
        "Grandpa.txt",
        (
            "Grandpa with KakaoTalk Chats\r\n"
            "Date Saved : 2022-02-03 07:00:00\r\n"
            "\r\n"
            "--------------- Tuesday, February 1, 2022 ---------------\r\n"
            "[Grandpa] [12:30 AM] can't sleep\r\n"
            "[Mina [work]] [12:31 AM] me neither\r\n"
            "Mina left.\r\n"
            "[Grandpa] [12:45 PM] lunch?\r\n"
            "[Grandpa] [11:59 PM] Photo\r\n"
            "--------------- Wednesday, February 2, 2022 ---------------\r\n"
            "[Mina [work]] [1:05 AM] File: report.pdf\r\n"
        ),
        [
            ("2022-02-01T00:30", "Grandpa", "can't sleep", "text"),
            ("2022-02-01T00:31", "Mina [work]", "me neither", "text"),
            ("2022-02-01T00:31", None, "Mina left.", "system"),
            ("2022-02-01T12:45", "Grandpa", "lunch?", "text"),
            ("2022-02-01T23:59", "Grandpa", "Photo", "photo"),
            ("2022-02-02T01:05", "Mina [work]", "File: report.pdf", "file"),
        ],
    ),
    "android_en_gb": (
        "android_en_gb",
        "KakaoTalk_Chats_Nan.txt",
        (
            "KakaoTalk Chats with Nan\r\n"
            "Date Saved : 3 July 2021, 8:00 pm\r\n"
            "\r\n"
            "1 July 2021, 12:15 pm\r\n"
            "1 July 2021, 12:15 pm, Nan : tea at 4?\r\n"
            "1 July 2021, 12:16 pm, Tom : yes, 4 : 30 is better\r\n"
            "2 July 2021, 12:01 am\r\n"
            "2 July 2021, 12:01 am, Nan : Voice Note\r\n"
        ),
        [
            ("2021-07-01T12:15", "Nan", "tea at 4?", "text"),
            ("2021-07-01T12:16", "Tom", "yes, 4 : 30 is better", "text"),
            ("2021-07-02T00:01", "Nan", "Voice Note", "voice"),
        ],
    ),
    "ios_en_at": (
        "ios_en",
        "Talk_2026.2.2 21:00-1.txt",
        (
            "Talk_2026.2.2 21:00-1.txt\r\n"
            "Date Saved : Feb 2, 2026 at 21:00\r\n"
            "\r\n"
            "Sunday, February 1, 2026\r\n"
            "Feb 1, 2026 at 20:35, Uncle Joe : see you at 9\r\n"
            "Feb 1, 2026 at 23:59, Kim : This message was deleted.\r\n"
            "Monday, February 2, 2026\r\n"
            "Feb 2, 2026 at 00:00, Uncle Joe : happy birthday\n"
            "Feb 1, 2026 at 20:35, see above\r\n"
        ),
        [
            ("2026-02-01T20:35", "Uncle Joe", "see you at 9", "text"),
            ("2026-02-01T23:59", "Kim", "This message was deleted.", "deleted"),
            ("2026-02-02T00:00", "Uncle Joe", "happy birthday\nFeb 1, 2026 at 20:35, see above", "text"),
        ],
    ),
    "mac_csv": (
        "mac_csv",
        "KakaoTalk_Chat_막내.csv",
        (
            "\ufeffDate,User,Message\r\n"
            '2024-01-01 00:00:59,"막내","새해다, ""진짜"" 새해"\r\n'
            '2024-01-01 12:30:00,"엄마","떡국 먹자\n두 그릇"\r\n'
            '2024-01-01 12:31:00,"","메시지가 삭제되었습니다."\r\n'
            '2024-01-01 23:59:59,"막내","사진"\r\n'
        ),
        [
            ("2024-01-01T00:00:59", "막내", '새해다, "진짜" 새해', "text"),
            ("2024-01-01T12:30", "엄마", "떡국 먹자\n두 그릇", "text"),
            ("2024-01-01T12:31", None, "메시지가 삭제되었습니다.", "deleted"),
            ("2024-01-01T23:59:59", "막내", "사진", "photo"),
        ],
    ),
}


def _rows(result: dict[str, object]) -> list[Row]:
    rows = result["messages"]
    assert isinstance(rows, list)
    out: list[Row] = []
    for row in rows:
        ts = datetime.fromisoformat(row["ts"])
        assert ts.utcoffset() == timedelta(hours=9)  # Asia/Seoul
        local = ts.strftime("%Y-%m-%dT%H:%M" + (":%S" if ts.second else ""))
        out.append((local, row["speaker"], row["text"], row["kind"]))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("chunk_bytes", [8 * 1024 * 1024, 37])
def test_a_hand_written_export_parses_to_its_hand_written_rows(
    case: str, chunk_bytes: int, tmp_path: Path
) -> None:
    variant, name, data, expected = CASES[case]
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8"))  # CRLF records and bare-LF continuations kept as typed
    result = parse_golden(path, chunk_bytes=chunk_bytes)
    assert result["format"] == variant
    assert result["quarantine"] == []
    assert _rows(result) == expected
