"""Sharing a recording's transcript out over its utterances: by speaking time, at punctuation, or not at all."""

from __future__ import annotations

from tasks.voice.transcripts import speech_units, split_transcript

TEXT = "밥은 먹었니? 따뜻하게 입고 다녀. 주말에 집에 올 수 있어"


def test_words_follow_the_speaking_time() -> None:
    assert split_transcript(TEXT, [1.0, 1.6, 2.0]) == [
        "밥은 먹었니?",
        "따뜻하게 입고 다녀.",
        "주말에 집에 올 수 있어",
    ]
    assert split_transcript(TEXT, [2.6, 2.0]) == [
        "밥은 먹었니? 따뜻하게 입고 다녀.",
        "주말에 집에 올 수 있어",
    ]


def test_a_pause_lands_on_punctuation_when_the_times_allow_either() -> None:
    # 8 syllables in two equal halves: "오늘은 비가" | "와, 우산 챙겨" would be 4|4 too, but the
    # comma is where people pause.
    assert split_transcript("오늘 비가 와, 우산 챙겨", [1.0, 1.0]) == ["오늘 비가 와,", "우산 챙겨"]


def test_no_credible_sharing_gives_none() -> None:
    assert split_transcript("안녕", [1.0, 1.0]) is None  # fewer words than utterances
    assert split_transcript("", [1.0]) is None
    assert split_transcript("가나다라마바사아자차 카", [0.2, 5.0]) is None  # 50 syllables a second
    assert split_transcript(TEXT, [1.0]) == [TEXT]


def test_speech_units() -> None:
    assert speech_units("밥은 먹었니?") == 5
    assert speech_units("OK 2개") == 2 / 3 + 2
