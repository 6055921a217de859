"""Deterministic synthetic KakaoTalk conversations (for the bundled sample, tests and benchmarks).

Two or more people with distinct styles, bursts and sessions, placeholders (사진, 이모티콘,
보이스톡 ...), multi-line messages and membership events, so every parser path is exercised.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final

from parsers.kakao.render import Line

PERSONA_LINES: Final = (
    "밥은 먹었니?", "오늘 날씨 춥다 따뜻하게 입고 다녀", "ㅎㅎ 그래 잘했네", "조심히 다녀와~",
    "엄마는 괜찮아 걱정하지 마", "주말에 올 수 있어?", "김치 보내줄게 ㅎㅎ", "아빠가 너 보고 싶대",
    "감기 조심하고", "일찍 자라", "그래그래 알았어", "사랑해 우리 딸", "시험 잘 봐!! 화이팅",
    "반찬 더 필요하면 말해", "ㅋㅋㅋㅋㅋㅋㅋㅋㅋㅋ 너무 웃기다",
    "아빠 번호 바뀌었어 010-2345-6789 저장해", "병원은 다녀왔어?", "엄마 오늘 산에 다녀왔어",
    "비 온대 우산 챙겨", "늦게 다니지 말고", "그 집 국밥 맛있더라", "돈 아껴 쓰고",
    "너무 무리하지 마라", "생일 축하해 우리 딸 ❤️", "잘 도착했니?", "응 엄마도 보고싶어",
)  # fmt: skip
USER_LINES: Final = (
    "응 먹었어", "엄마 뭐해?", "나 오늘 회사에서 칭찬받았어", "주말에 갈게!", "ㅋㅋㅋ 알겠어",
    "오늘 너무 피곤하다", "엄마 김치 최고야", "아빠는?", "응응", "내일 전화할게",
    "지금 퇴근 중", "엄마 사랑해", "병원 다녀왔어 괜찮대", "날씨 진짜 춥다", "ㅇㅋ",
    "이번 달 좀 바빠", "엄마 생일 선물 뭐 갖고 싶어?", "도착했어!", "ㅠㅠ 보고싶다",
)  # fmt: skip
MULTILINE: Final = (
    "장 볼 거\n- 두부\n- 파\n- 계란 한 판",
    "오늘 있었던 일\n\n아침에 늦잠 자서 뛰어갔어 ㅋㅋ",
    "주소 보내줄게\n서울 중구 세종대로 110\n문 앞에 두고 가래",
    "등록금 보낼게\n국민은행 123456-01-234567 로 보내면 돼",
)  # fmt: skip
PLACEHOLDERS: Final = (
    "사진", "사진 3장", "이모티콘", "동영상", "보이스톡 해요", "보이스톡 0:17", "음성메시지",
    "파일: 가족사진.zip", "삭제된 메시지입니다.", "https://youtu.be/dQw4w9WgXcQ",
)  # fmt: skip


def conversation(
    n_messages: int,
    seed: int = 7,
    persona: str = "엄마",
    user: str = "나",
    start: datetime = datetime(2024, 1, 3, 8, 12),
    others: tuple[str, ...] = (),
) -> Iterator[Line]:
    """Yield `n_messages` lines in time order: bursts within sessions, sessions a few hours apart."""
    rng = random.Random(seed)
    ts = start
    speakers = (persona, user, *others)
    speaker = persona
    for i in range(n_messages):
        roll = rng.random()
        if roll < 0.08:
            ts += timedelta(hours=rng.randint(2, 30), minutes=rng.randint(0, 59))
        else:
            ts += timedelta(seconds=rng.choice((0, 0, 60, 60, 120, 300)))
        ts = ts.replace(second=0)
        if others and rng.random() < 0.004:
            who = rng.choice(others)
            yield Line(ts, None, f"{who}님이 나갔습니다." if i % 2 else f"{who}님이 들어왔습니다.")
            continue
        if rng.random() < 0.45:
            speaker = rng.choice(speakers)
        pick = rng.random()
        if pick < 0.07:
            text = rng.choice(PLACEHOLDERS)
        elif pick < 0.10:
            text = rng.choice(MULTILINE)
        else:
            text = rng.choice(PERSONA_LINES if speaker == persona else USER_LINES)
        yield Line(ts, speaker, text)
