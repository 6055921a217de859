"""The quality gates pass on good data and fail, naming the expectation, on corrupted copies."""

from __future__ import annotations

import pandas as pd
import pytest

from schemas.quality import message_suite, pair_suite
from tasks.datasets.quality import QualityGateError, run_gate
from tasks.trust.pii import LEFTOVER_PATTERNS

EARLIEST, LATEST = 1_230_768_000, 1_900_000_000


def _messages() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "message_id": ["a", "b", "c"],
            "ts_s": [1_700_000_000, 1_700_000_060, 1_700_000_120],
            "speaker": ["엄마", "나", "엄마"],
            "kind": ["text", "text", "text"],
            "text": ["밥 먹었니", "응 <phone_1> 로 해", "ㅋㅋ"],
        }
    )


def _pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pair_id": ["p1", "p2", "p3"],
            "split": ["train", "train", "validation"],
            "reply": ["응", "그래", "잘자"],
            "reply_speaker": ["엄마", "엄마", "엄마"],
            "session_id": ["s1", "s1", "s2"],
            "context_turns": [1, 2, 1],
            "context_text": ["뭐해", "뭐해\n응", "잘자요"],
            "splits_of_session": [1, 1, 1],
        }
    )


def _failed(report) -> set[tuple[str, str | None]]:
    return {(e.expectation, e.column) for e in report.expectations if not e.success}


def test_good_data_passes_both_gates() -> None:
    assert run_gate("messages", _messages(), message_suite(LEFTOVER_PATTERNS, EARLIEST, LATEST)).success
    assert run_gate("pairs", _pairs(), pair_suite(LEFTOVER_PATTERNS, ["엄마"], 3)).success


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (lambda d: d.assign(message_id=["a", "a", "c"]), ("expect_column_values_to_be_unique", "message_id")),
        (
            lambda d: d.assign(ts_s=[1, 1_700_000_060, 1_700_000_120]),
            ("expect_column_values_to_be_between", "ts_s"),
        ),
        (
            lambda d: d.assign(speaker=["엄마", None, "엄마"]),
            ("expect_column_values_to_not_be_null", "speaker"),
        ),
        (lambda d: d.assign(kind=["text", "sticker", "text"]), ("expect_column_values_to_be_in_set", "kind")),
        (
            lambda d: d.assign(text=["밥", "내 번호 010-1234-5678", "ㅋ"]),
            ("expect_column_values_to_not_match_regex_list", "text"),
        ),
    ],
)
def test_message_gate_names_the_broken_expectation(corrupt, expected) -> None:
    report = run_gate("messages", corrupt(_messages()), message_suite(LEFTOVER_PATTERNS, EARLIEST, LATEST))
    assert not report.success
    assert _failed(report) == {expected}
    failed = next(e for e in report.expectations if not e.success)
    assert failed.result["unexpected_count"] == (
        2 if expected[1] == "message_id" else 1
    )  # both copies of a dup


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (
            lambda d: d.assign(context_turns=[0, 2, 1]),
            ("expect_column_values_to_be_between", "context_turns"),
        ),
        (
            lambda d: d.assign(reply=["", "그래", "잘자"]),
            ("expect_column_value_lengths_to_be_between", "reply"),
        ),
        (
            lambda d: d.assign(reply_speaker=["엄마", "나", "엄마"]),
            ("expect_column_values_to_be_in_set", "reply_speaker"),
        ),
        (
            lambda d: d.assign(splits_of_session=[2, 2, 1]),
            ("expect_column_values_to_be_in_set", "splits_of_session"),
        ),
        (lambda d: d.iloc[:2], ("expect_table_row_count_to_be_between", None)),
        (
            lambda d: d.assign(context_text=["mom@example.com", "뭐해", "잘자요"]),
            ("expect_column_values_to_not_match_regex_list", "context_text"),
        ),
    ],
)
def test_pair_gate_names_the_broken_expectation(corrupt, expected) -> None:
    report = run_gate("pairs", corrupt(_pairs()), pair_suite(LEFTOVER_PATTERNS, ["엄마"], 3))
    assert _failed(report) == {expected}


def test_gate_error_message_and_report_hold_counts_never_values() -> None:
    broken = _messages().assign(text=["밥", "내 번호 010-1234-5678", "ㅋ"])
    report = run_gate("messages", broken, message_suite(LEFTOVER_PATTERNS, EARLIEST, LATEST))
    message = str(QualityGateError(report))
    assert message == (
        "quality gate 'messages' failed on 3 rows: expect_column_values_to_not_match_regex_list(text) unexpected_count=1"
    )
    assert "010-1234-5678" not in report.to_markdown() + str(report.to_dict())
    assert "| expect_column_values_to_not_match_regex_list | text | FAILED |" in report.to_markdown()
