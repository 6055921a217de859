"""Replies that blandness cannot win: hubs down, no fragments, calibration on what was never seen.

The embedder is the hashed bag of words of test_conversation_eval (texts sharing a word are close),
so each fixture's geometry is known: which stored message is nearest, which reply a raw cosine
objective would prefer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.data import Turn
from tasks.datasets.options import TurnOptions
from tasks.datasets.turns import build_pairs, build_turns
from tasks.replies.blandness import ReplyProfile
from tasks.replies.calibration import calibrate, contrastive
from tasks.replies.ranker import Calibration, Candidate, Memory, choose, reply_variants, usable_generated
from tests.test_conversation_eval import TOPICS, WordEmbedder


def _memory_with_a_bland_reply_to_everything() -> list[tuple[list[Turn], str, tuple[str, ...]]]:
    pairs: list[tuple[list[Turn], str, tuple[str, ...]]] = []
    for topic in TOPICS:
        pairs.append(([Turn(f"{topic} 먹었어", False)], f"{topic} 말이구나 좋다", ()))
        pairs.append(([Turn(f"{topic} 봤어 진짜", False)], "그래", ()))  # said after every topic
    return pairs


def test_the_profile_finds_what_the_persona_says_to_anything_from_their_own_data() -> None:
    pairs = _memory_with_a_bland_reply_to_everything()
    profile = ReplyProfile.build([(c[-1].text, r, p) for c, r, p in pairs], WordEmbedder())
    assert profile.is_bland("그래") and profile.is_bland("그래?") and profile.is_bland("그래\nㅋㅋ")
    assert profile.is_bland("ㅎㅎ") and profile.is_bland("😊")  # no letter: no content
    assert not profile.is_bland("김치 말이구나 좋다") and not profile.is_bland("그래 김치 먹어")
    # A line said after many messages of one topic is that topic's reply, not filler.
    triples: list[tuple[str, str, tuple[str, ...]]] = [(c[-1].text, r, p) for c, r, p in pairs]
    triples += [
        (f"김치 김치 {w}", "김치 맛있지", ()) for w in ("먹었어", "담갔어", "샀어", "보냈어", "남았어")
    ]
    assert not ReplyProfile.build(triples, WordEmbedder()).is_bland("김치 맛있지")


def test_a_topical_reply_beats_a_bland_one_whose_message_is_nearer() -> None:
    bank = Memory.build(_memory_with_a_bland_reply_to_everything(), WordEmbedder())
    profile = ReplyProfile.build(bank.sources, WordEmbedder())
    calibration = Calibration(threshold=0.1).with_profile(profile)
    for topic in TOPICS[:4]:
        pool = bank.candidates([Turn(f"{topic} 봤어 진짜 대박", False)], WordEmbedder())
        assert pool[0].text == "그래"  # the nearest answered message was answered blandly
        pick = choose(pool, calibration)
        assert pick is not None and pool[pick].text == f"{topic} 말이구나 좋다"
    # Small talk may be answered in kind: the persona answered the same message that way.
    exact = [Candidate("그래", 0.97, 0.1), Candidate("김치 말이구나 좋다", 0.5, 0.2)]
    assert choose(exact, calibration) == 0


def test_calibration_picks_the_topical_reply_where_raw_cosine_would_pick_the_bland_one() -> None:
    embedder = WordEmbedder()
    memory = [([Turn(f"{t} 이야기 들려줘", False)], f"{t} 말이구나 좋다", ()) for t in TOPICS]
    # "그래" follows three messages only: too few to be bland by the profile, so the objective decides.
    memory += [([Turn(f"{t} 이야기 들려줘 응", False)], "그래", ()) for t in TOPICS[:3]]
    held_out = [([Turn(f"{t} 이야기 들려줘 응 ㅋㅋ", False)], f"그래 그래 {t}") for t in TOPICS[:3]]
    bank = Memory.build(memory, embedder)
    truth = embedder.passages([r for _, r in held_out])
    bland, topical = embedder.passages(["그래"]), embedder.passages([f"{TOPICS[0]} 말이구나 좋다"])
    # The fixture: by raw cosine to the real reply "그래" wins; by the contrastive score it does not.
    assert float((bland @ truth[0])[0]) > float((topical @ truth[0])[0])
    assert contrastive(bland, truth)[0] < contrastive(topical, truth)[0]
    calibration = calibrate(held_out, bank, embedder)
    assert calibration.objective.startswith("response selection") and not calibration.bland_lines
    for (context, _), topic in zip(held_out, TOPICS, strict=False):
        pool = bank.candidates(context, embedder)
        pick = choose(pool, calibration)
        assert pick is not None and pool[pick].text == f"{topic} 말이구나 좋다"


def test_a_persona_whose_chats_repeat_lines_still_answers_paraphrases() -> None:
    embedder = WordEmbedder()
    # Every held-out message occurs word for word in training, as real chats repeat themselves.
    memory = [([Turn(t, False)], f"{t} 말이구나", ()) for t in TOPICS]
    memory += [([Turn(f"{t} 얘기", False)], f"{t} 말이구나", ()) for t in TOPICS]
    held_out = [([Turn(t, False)], f"{t} 말이구나") for t in TOPICS]
    bank = Memory.build(memory, embedder)
    calibration = calibrate(held_out, bank, embedder)
    assert calibration.held_out == len(TOPICS) and calibration.held_out_verbatim == len(TOPICS)
    assert calibration.answered_share == 1.0
    for topic in TOPICS:  # asked in words never stored: answered, on topic
        pool = bank.candidates([Turn(f"{topic} 말해 봐", False)], embedder)
        pick = choose(pool, calibration)
        assert pick is not None and pool[pick].text == f"{topic} 말이구나"


def test_a_burst_is_said_whole_or_as_whole_messages_never_as_a_piece() -> None:
    burst = "우리 딸\n사랑해\n밥 먹어"
    parts = ["우리 딸\n사랑해", "밥 먹어"]  # the first message has two lines
    assert reply_variants(burst, parts) == [burst, "우리 딸\n사랑해", "밥 먹어"]
    assert reply_variants(burst) == [burst]  # a dataset without parts: only the whole burst
    assert reply_variants("응", ["응"]) == ["응"]
    # The dataset keeps each turn's whole messages beside the joined reply.
    ts = pd.Timestamp("2024-01-01 09:00", tz="UTC")
    messages = pd.DataFrame(
        {
            "conversation_id": ["c"] * 3,
            "ts": [ts, ts + pd.Timedelta(minutes=1), ts + pd.Timedelta(minutes=1, seconds=20)],
            "message_id": ["m1", "m2", "m3"],
            "speaker": ["나", "엄마", "엄마"],
            "text": ["밥 먹었어?", "우리 딸\n사랑해", "밥 먹어"],
            "is_persona": [False, True, True],
        }
    )
    options = TurnOptions()
    pairs = build_pairs(build_turns(messages, options), "o", "엄마", options).to_pylist()
    assert [(p["reply"], p["reply_parts"]) for p in pairs] == [(burst, parts)]


def test_a_generated_piece_of_a_word_is_a_fragment_and_not_said() -> None:
    profile = ReplyProfile.build([("나 합격했어", "결국 해냈구나 우리 아들", ())], WordEmbedder())
    assert profile.is_fragment("냈구나") and profile.is_fragment("결국 해냈")
    assert not profile.is_fragment("우리 아들 해냈구나") and not profile.is_fragment("ㅋㅋ")
    calibration = Calibration().with_profile(profile)
    pool = [Candidate("결국 해냈구나 우리 아들", 0.8, 0.5)]
    assert usable_generated(["냈구나", "우리 아들 결국 해냈구나", ""], pool, calibration) == [
        "우리 아들 결국 해냈구나"
    ]
    assert not ReplyProfile().is_fragment("냈구나")  # no word list (an older calibration): unknown


def test_contrastive_scores_a_hub_zero_and_the_right_reply_high() -> None:
    truth = np.eye(6)  # six contexts' real replies, unrelated to each other
    hub = np.tile(np.ones(6) / np.sqrt(6), (6, 1))  # equally close to every real reply
    assert np.allclose(contrastive(hub, truth), 0.0)
    assert np.allclose(contrastive(truth, truth), 1.0)
    assert np.allclose(contrastive(truth[::-1], truth)[[0, 5]], -0.2)  # another context's reply


def test_small_talk_is_answered_with_one_short_message_not_a_burst() -> None:
    profile = ReplyProfile.build(
        [(f"{t} 봤어 진짜", "그래", ()) for t in TOPICS] + [("잘 지냈어", "응 잘 지냈지", ())], WordEmbedder()
    )
    calibration = Calibration(threshold=0.1).with_profile(profile)
    pool = [
        Candidate("그래\n김치 보내줄게\n시험 잘 봐", 0.9, 0.5),  # a burst of unrelated lines
        Candidate("그래", 0.85, 0.2),
        Candidate("ㅎㅎ", 0.84, 0.2),
        Candidate("ㅋㅋ", 0.83, 0.2),
        Candidate("응 잘 지냈지", 0.6, 0.4),
    ]
    pick = choose(pool, calibration)
    assert pick is not None and "\n" not in pool[pick].text
    # The same burst answers a message about something (not small talk).
    assert choose([pool[0], pool[4]], calibration) == 0
