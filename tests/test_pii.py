"""Planted personal data: none of it may survive into a dataset, and pseudonyms stay consistent."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from infra.settings import Settings
from infra.storage import open_storage
from parsers.kakao.render import Line, RenderOptions, render_export
from tasks.datasets.build import DatasetOptions, build_dataset
from tasks.ingest.uploads import ingest_export
from tasks.trust.pii import Pseudonymizer, redact

# (sentence, the personal values planted in it)
PLANTED = [
    ("엄마 번호 바뀌었어 010-2345-6789 저장해", ["010-2345-6789"]),
    ("급하면 01023456789로 전화해", ["01023456789"]),
    ("해외에선 +82 10-2345-6789 로 걸어", ["+82 10-2345-6789"]),
    ("집 전화는 02-123-4567 이야", ["02-123-4567"]),
    ("이모 번호 031 765 4321", ["031 765 4321"]),
    ("주민번호 900101-1234567 맞지?", ["900101-1234567"]),
    ("동생 꺼는 0503153234567입니다", ["0503153234567"]),
    ("카드번호 4111 1111 1111 1111 불러줄게", ["4111 1111 1111 1111"]),
    ("이 카드 5555-5555-5555-4444 써", ["5555-5555-5555-4444"]),
    ("국민은행 123456-01-234567 로 보내", ["123456-01-234567"]),
    ("신한 110-234-567890 이야", ["110-234-567890"]),
    ("카카오뱅크 3333012345678 으로 입금해줘", ["3333012345678"]),
    ("메일은 mom.kim+family@example.co.kr 로 보내", ["mom.kim+family@example.co.kr"]),
    ("주소는 서울특별시 강남구 테헤란로 427, 101동 1001호 야", ["테헤란로 427"]),
    ("택배는 부산 해운대구 센텀중앙로 97 로 보내", ["센텀중앙로 97"]),
    ("옛날 집 역삼동 123-45번지 기억나?", ["123-45번지"]),
]
HARMLESS = [
    "2024-07-05 약속 잊지 마",
    "오늘 10000원 썼어",
    "학교로 3시에 와",
    "버스 472번 타",
    "3시 30분에 보자",
]


def test_each_planted_value_is_replaced_by_a_typed_token() -> None:
    pseudonyms = Pseudonymizer()
    for sentence, values in PLANTED:
        out, counts = redact(sentence, pseudonyms)
        assert counts, sentence
        for value in values:
            assert value not in out, (sentence, out)
        assert re.search(r"<(phone|rrn|card|account|email|address)_\d+>", out), out


def test_ordinary_numbers_are_left_alone() -> None:
    for sentence in HARMLESS:
        assert redact(sentence, Pseudonymizer()) == (sentence, {})


def test_same_value_same_token_across_formats() -> None:
    pseudonyms = Pseudonymizer()
    a, _ = redact("010-2345-6789", pseudonyms)
    b, _ = redact("01023456789 로", pseudonyms)
    c, _ = redact("+82 10-2345-6789", pseudonyms)
    d, _ = redact("010-9999-0000", pseudonyms)
    assert a == "<phone_1>" and b == "<phone_1> 로" and c == "<phone_1>" and d == "<phone_2>"


@pytest.fixture
def planted_lake(tmp_path: Path) -> Path:
    """An Android export where mom writes every planted sentence, twice, between ordinary talk."""
    lines = []
    ts = datetime(2024, 3, 1, 9, 0)
    for round_ in range(2):
        for i, (sentence, _) in enumerate(PLANTED + [(h, []) for h in HARMLESS]):
            ts += timedelta(minutes=3 if i % 4 else 180)
            lines.append(Line(ts, "나", f"질문 {round_}-{i}"))
            ts += timedelta(minutes=1)
            lines.append(Line(ts, "엄마", sentence))
    export = tmp_path / "planted.txt"
    export.write_text(render_export("android_ko", lines, RenderOptions(room="엄마")), encoding="utf-8")
    lake = tmp_path / "lake"
    ingest_export(export, "alice", open_storage(f"file://{lake}"), Settings())
    return lake


def test_no_planted_value_survives_into_the_dataset(planted_lake: Path) -> None:
    storage = open_storage(f"file://{planted_lake}")
    result = build_dataset(storage, "alice", "엄마", options=DatasetOptions(min_pairs=5))
    texts = []
    for split in ("train", "validation"):
        for row in pq.read_table(planted_lake / result.prefix / f"{split}.parquet").to_pylist():
            texts.append(row["reply"])
            texts.extend(turn["text"] for turn in row["context"])
    assert len(texts) > 40
    everything = "\n".join(texts)
    digits_only = re.sub(r"\D", "", everything)
    for _, values in PLANTED:
        for value in values:
            assert value not in everything
            digits = re.sub(r"\D", "", value)
            if len(digits) >= 8:  # no spelling of the number survives, separators or not
                assert digits not in digits_only
    # Consistent: the same planted phone maps to one token in both rounds.
    assert everything.count("<phone_1>") >= 4  # 010-2345-6789 in three spellings, twice
    for harmless in HARMLESS:
        assert harmless in everything
    # Nothing of the values is in the audit or the report either.
    side = (planted_lake / result.prefix / "quality.md").read_text(encoding="utf-8")
    side += str(pq.read_table(planted_lake / result.prefix / "audit.parquet").to_pylist())
    side += (planted_lake / result.prefix / "manifest.json").read_text(encoding="utf-8")
    for _, values in PLANTED:
        for value in values:
            assert value not in side
