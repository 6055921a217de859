"""Each cleaning step on a tiny table: what it keeps, what it drops, and the reason."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pandas as pd

from schemas import names
from tasks.datasets import clean
from tests.messages import frame

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _reasons(result: clean.StepResult) -> dict[str, str]:
    return dict(zip(result.audit["message_id"], result.audit["reason"], strict=True))


def test_reject_bad_rows_names_each_cause() -> None:
    df = frame(
        [
            {"text": "정상", "message_id": "ok"},
            {"text": "제어\x07문자", "message_id": "ctl"},
            {"text": "가" * 30_000, "message_id": "big"},  # 90,000 bytes in UTF-8
            {"text": "옛날", "message_id": "old", "ts": pd.Timestamp("1999-12-31", tz="UTC")},
            {"text": "미래", "message_id": "future", "ts": pd.Timestamp("2030-01-01", tz="UTC")},
        ]
    )
    result = clean.reject_bad_rows(df, NOW)
    assert result.kept["message_id"].tolist() == ["ok"]
    assert _reasons(result) == {
        "ctl": "control characters in text",
        "big": "text longer than 64 KiB",
        "old": "implausible timestamp",
        "future": "implausible timestamp",
    }
    assert set(result.audit["action"]) == {"dropped"}


def test_kind_based_drops() -> None:
    df = frame(
        [
            {"text": "안녕", "message_id": "t"},
            {"text": "철수님이 나갔습니다.", "kind": "system", "speaker": None, "message_id": "s"},
            {"text": "삭제된 메시지입니다.", "kind": "deleted", "message_id": "d"},
            {"text": "사진", "kind": "photo", "message_id": "p"},
            {"text": "보이스톡 0:17", "kind": "call", "message_id": "c"},
        ]
    )
    steps = [("sys", clean.drop_system), ("del", clean.drop_deleted), ("att", clean.drop_attachments)]
    kept, audit, counts = clean.run_steps(df, steps)
    assert kept["message_id"].tolist() == ["t"]
    assert dict(zip(audit["message_id"], audit["reason"], strict=True)) == {
        "s": "system event",
        "d": "deleted or hidden placeholder",
        "p": "attachment placeholder (photo)",
        "c": "attachment placeholder (call)",
    }
    assert [c["dropped"] for c in counts] == [1, 1, 2]


def test_normalize_text() -> None:
    decomposed = unicodedata.normalize("NFD", "한글")
    df = frame(
        [
            {"text": decomposed, "message_id": "nfc"},
            {"text": "a\u200bb\ufeff", "message_id": "zw"},
            {"text": "ㅋ" * 10 + " 웃겨 " + "ㅠ" * 8, "message_id": "laugh"},
            {"text": "봐봐 https://youtu.be/x?t=1&token=abc 진짜", "message_id": "url"},
            {"text": "  여러   칸 \t 공백\n\n\n\n줄  ", "message_id": "ws"},
            {"text": "그대로", "message_id": "same"},
        ]
    )
    result = clean.normalize_text(df)
    assert result.kept["text"].tolist() == [
        "한글",
        "ab",
        "ㅋ" * 6 + " 웃겨 " + "ㅠ" * 6,
        "봐봐 <url> 진짜",
        "여러 칸 공백\n\n줄",
        "그대로",
    ]
    assert sorted(result.audit["message_id"]) == ["laugh", "nfc", "url", "ws", "zw"]
    assert set(result.audit["action"]) == {"changed"}


def test_drop_empty_after_normalisation() -> None:
    df = clean.normalize_text(
        frame([{"text": "\u200b  ", "message_id": "e"}, {"text": "x", "message_id": "x"}])
    ).kept
    result = clean.drop_empty(df)
    assert result.kept["message_id"].tolist() == ["x"]
    assert _reasons(result) == {"e": "empty text"}


def test_duplicates_across_overlapping_exports_but_not_within_one() -> None:
    df = frame(
        [
            # Export A (file a) and export B (file b) overlap on the first two messages.
            {"text": "ㅋㅋ", "minute": 0, "message_id": "a-1"},
            {"text": "ㅋㅋ", "minute": 0, "message_id": "a-2"},  # said twice in a minute: real
            {"text": "밥 먹자", "minute": 1, "message_id": "a-3"},
            {"text": "ㅋㅋ", "minute": 0, "message_id": "b-1"},
            {"text": "ㅋㅋ", "minute": 0, "message_id": "b-2"},
            {"text": "밥 먹자", "minute": 1, "message_id": "b-3"},
            {"text": "새 메시지", "minute": 2, "message_id": "b-4"},
        ]
    )
    # The Mac CSV has seconds: the same minute still matches.
    df.loc[df["message_id"] == "b-3", "ts"] += pd.Timedelta(seconds=33)
    result = clean.drop_duplicates(df)
    assert sorted(result.kept["message_id"]) == ["a-1", "a-2", "a-3", "b-4"]
    assert sorted(result.audit["message_id"]) == ["b-1", "b-2", "b-3"]


def test_every_row_is_kept_or_explained() -> None:
    df = frame(
        [
            {"text": t, "kind": k}
            for t, k in [("a", "text"), ("", "text"), ("사진", "photo"), ("b", "text"), ("b", "text")]
        ]
    )
    steps = [("att", clean.drop_attachments), ("norm", clean.normalize_text), ("empty", clean.drop_empty)]
    kept, audit, _ = clean.run_steps(df, steps)
    dropped = set(audit.loc[audit["action"] == "dropped", "message_id"])
    assert set(kept["message_id"]) | dropped == set(df["message_id"])
    assert not set(kept["message_id"]) & dropped


def test_slug_keeps_hangul_and_makes_paths_safe() -> None:
    assert names.slug(" 엄마 ") == "엄마"  # surrounding blanks are not part of the name
    made_safe = names.slug("김민준/94/늑 대#1003")
    assert (
        made_safe.startswith("김민준-94-늑-대-1003~") and len(made_safe) == len("김민준-94-늑-대-1003~") + 8
    )
    assert names.slug("../..").startswith("persona~") and "/" not in names.slug("../..")
