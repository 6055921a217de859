"""Every supported variant: a sample export and its expected rows (reviewed by hand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.golden_support import SAMPLES, parse_golden

GOLDEN = Path(__file__).parent / "golden"


def _expected(sample: str) -> dict[str, object]:
    return json.loads((GOLDEN / f"{sample}.expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_parses_to_expected_rows(sample: str) -> None:
    assert parse_golden(GOLDEN / sample) == _expected(sample)


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("chunk_bytes", [64, 333])
def test_chunk_boundaries_do_not_change_the_result(sample: str, chunk_bytes: int) -> None:
    # Tiny chunks put a boundary inside almost every message, multi-byte character and CRLF.
    assert parse_golden(GOLDEN / sample, chunk_bytes=chunk_bytes) == _expected(sample)


def test_every_variant_has_a_golden_sample() -> None:
    from parsers.kakao.formats import ALL_FORMAT_NAMES

    covered = {_expected(sample)["format"] for sample in SAMPLES}
    assert covered == set(ALL_FORMAT_NAMES)


@pytest.mark.parametrize(
    ("copy", "original"),
    [("android_ko_cp949.txt", "android_ko.txt"), ("ios_ko_utf16.txt", "ios_ko.txt")],
)
def test_encodings_give_the_same_messages(copy: str, original: str) -> None:
    def strip(result: dict[str, object]) -> list[dict[str, object]]:
        rows = result["messages"]
        assert isinstance(rows, list)
        return [{k: v for k, v in row.items() if k not in ("message_id", "conversation_id")} for row in rows]

    assert strip(parse_golden(GOLDEN / copy)) == strip(parse_golden(GOLDEN / original))
