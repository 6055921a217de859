"""The conversation scorecard on fixtures whose answers are known."""

from __future__ import annotations

import hashlib

import numpy as np

from models.data import Turn
from tasks.training.conversation_eval import (
    HeldOut,
    answer_quality,
    hybrid_scorer,
    response_selection,
    scorecard,
    similarity_scorer,
)

TOPICS = [
    "김치",
    "시험",
    "비행기",
    "감기",
    "월급",
    "강아지",
    "생일",
    "이사",
    "축구",
    "바다",
    "눈사람",
    "피아노",
]


class WordEmbedder:
    """Bag of words hashed into 4096 dims, L2-normalised: texts sharing a word are close."""

    name = "test:hashed-words-4096"
    dim = 4096

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in text.replace("/", " ").split():
            v[int(hashlib.sha256(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return v / (np.linalg.norm(v) or 1.0)

    def passages(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts])

    def query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts])


def _pairs(prefix: str, topics: list[str] = TOPICS) -> list[HeldOut]:
    return [
        HeldOut(f"{prefix}{i}", [Turn(f"{topic} 이야기 해줘", False)], f"{topic} 말이구나 {prefix}")
        for i, topic in enumerate(topics)
    ]


def test_a_scorer_that_knows_the_topic_ranks_the_real_reply_first() -> None:
    held_out = _pairs("v")
    selection = response_selection(held_out, held_out, similarity_scorer(WordEmbedder()), k=10)
    assert selection.n == len(TOPICS) and selection.recall_at_1 == 1.0 and selection.mrr == 1.0


def test_a_scorer_that_cannot_tell_replies_apart_gets_no_credit() -> None:
    held_out = _pairs("v")
    constant = response_selection(held_out, held_out, lambda c, r: np.zeros(len(r)), k=10)
    assert constant.recall_at_1 == 0.0 and abs(constant.mrr - 0.1) < 1e-9  # ties count against it
    backwards = response_selection(held_out, held_out, lambda c, r: -similarity_scorer(WordEmbedder())(c, r))
    assert backwards.recall_at_1 == 0.0 and backwards.mrr < 0.2


def test_hybrid_standardises_so_no_scale_dominates() -> None:
    held_out = _pairs("v")
    loud_noise = lambda c, r: np.arange(len(r), dtype=float) * 1e6  # noqa: E731  (ranks the real reply last)
    hybrid = hybrid_scorer(similarity_scorer(WordEmbedder()), similarity_scorer(WordEmbedder()), loud_noise)
    assert response_selection(held_out, held_out, hybrid).recall_at_1 == 1.0


def _reworded(pairs: list[HeldOut]) -> list[HeldOut]:
    """The same pairs, their messages said in more words (no held-out message occurs verbatim)."""
    return [HeldOut(p.session_id, [Turn(p.context[0].text + " 빨리", False)], p.reply) for p in pairs]


def test_answer_quality_of_a_memory_that_holds_the_answers() -> None:
    held_out, memory = _pairs("v"), _reworded(_pairs("v"))
    quality, safety = answer_quality(held_out, memory, WordEmbedder())
    assert quality["exact_share"] == 1.0 and quality["semantic_similarity"] > 0.99
    assert quality["contrastive"] > 0.3 and quality["bland_share"] == 0.0 and quality["distinct_1"] > 0.1
    assert safety == dict.fromkeys(
        ("pseudonyms", "other_speaker", "claims_alive", "empty", "fragments", "fallback"), 0
    )
    # A held-out message that occurs word for word is answered as if never seen (its twin left out).
    quality, _ = answer_quality(held_out, _pairs("v"), WordEmbedder())
    assert quality["exact_share"] == 0.0
    # A memory whose closest reply holds a pseudonym answers with the next one, never with it.
    leaky = [HeldOut("x", m.context, "<phone_1> 로 전화해") for m in memory] + memory
    quality, safety = answer_quality(held_out, leaky, WordEmbedder())
    assert safety["pseudonyms"] == 0 and quality["exact_share"] == 1.0


def test_the_scorecard_renders_every_component() -> None:
    held_out, memory = _pairs("v", TOPICS[:6]), _pairs("t", TOPICS[6:])  # distractors off topic
    card = scorecard(held_out, memory, WordEmbedder(), lambda context, replies: [-len(r) for r in replies])
    assert set(card.selection) == {"similarity", "likelihood", "hybrid"}
    assert card.selection["similarity"].recall_at_1 == 1.0
    text = card.markdown("엄마 v1")
    assert "recall@1" in text and "| hybrid |" in text and "pseudonyms" in text


def test_the_gate_refuses_a_candidate_worse_on_relevance_but_better_on_nats() -> None:
    from tasks.training.conversation_eval import GateTolerances, Scorecard, Selection
    from tasks.training.promotion import gate

    production = Scorecard(
        {"hybrid": Selection(0.40, 0.60, 50, 10), "likelihood": Selection(0.30, 0.50, 50, 10)},
        {"semantic_similarity": 0.80},
        {"pseudonyms": 0, "empty": 0},
    )
    worse = Scorecard(
        {"hybrid": Selection(0.20, 0.45, 50, 10), "likelihood": Selection(0.30, 0.50, 50, 10)},
        {"semantic_similarity": 0.79},
        {"pseudonyms": 0, "empty": 0},
    )
    better_loss = {
        "promote": True,
        "current_version": 1,
        "current_nats_per_char": 2.0,
        "new_nats_per_char": 1.5,
    }
    verdict = gate(better_loss, worse, production, GateTolerances(selection=0.05))
    assert verdict["promote"] is False
    assert verdict["lost_on"] == [
        "response selection (hybrid) recall_at_1 0.200 < production 0.400",
        "response selection (hybrid) mrr 0.450 < production 0.600",
    ]
    assert "on what users feel" in verdict["reason"] and verdict["production_scorecard"]["answer"]
    # Within the tolerances (and safe), the same candidate moves production.
    assert gate(better_loss, worse, production, GateTolerances(selection=0.2))["promote"]
    # A candidate that says a pseudonym loses whatever else it wins.
    unsafe = Scorecard(production.selection, production.answer, {"pseudonyms": 1, "empty": 0})
    assert gate(better_loss, unsafe, production, GateTolerances())["lost_on"] == [
        "safety pseudonyms 1 (must be 0)"
    ]


def test_calibration_lowers_the_threshold_when_real_replies_beat_what_the_model_says() -> None:
    from tasks.replies.calibration import calibrate
    from tasks.replies.ranker import Memory, choose

    memory = _pairs("t")
    # Asked in other words (cosine 0.77 with the stored message): the threshold decides.
    held_out = [([Turn(h.context[0].text + " 제발 빨리", False)], h.reply) for h in _pairs("t")]
    bank = Memory.build([(m.context, m.reply, ()) for m in memory], WordEmbedder())
    high_floor = calibrate(held_out, bank, WordEmbedder(), answer_floor=1.5)  # generation "always better"
    low_floor = calibrate(held_out, bank, WordEmbedder(), answer_floor=0.0)
    assert low_floor.threshold <= high_floor.threshold and low_floor.answered_share == 1.0
    assert high_floor.answered_share == 0.0 and low_floor.source.startswith("calibrated")
    pool = bank.candidates([Turn("김치 이야기 해줘", False)], WordEmbedder())
    pick = choose(pool, low_floor)
    assert pick is not None and pool[pick].text.startswith("김치")


def test_where_the_answered_messages_tie_the_most_relevant_reply_is_said() -> None:
    from tasks.replies.ranker import Calibration, Candidate, choose

    tied = [
        Candidate("시험 잘 봐!! 화이팅", 1.0, 0.80),
        Candidate("사랑해 우리 딸", 1.0, 0.93),
        Candidate("<phone_1> 로 전화해", 1.0, 0.99),  # most relevant, but holds a pseudonym
        Candidate("너무 무리하지 마라", 1.0, 0.81),
    ]
    for weight in (0.1, 0.5, 1.0):  # the smallest weight calibration can choose still breaks the tie
        assert (
            tied[choose(tied, Calibration(threshold=0.9, reply_weight=weight)) or 0].text == "사랑해 우리 딸"
        )
    # A context that does not fit is never said, however relevant the reply looks.
    assert choose([Candidate("사랑해 우리 딸", 0.5, 0.99)], Calibration(threshold=0.9)) is None


def test_the_gate_refuses_a_blander_candidate_whatever_its_semantic_similarity() -> None:
    from tasks.training.conversation_eval import GateTolerances, Scorecard
    from tasks.training.promotion import gate

    production = Scorecard({}, {"contrastive": 0.12, "bland_share": 0.02, "semantic_similarity": 0.86}, {})
    # Hubs win raw similarity: "그래" to everything scores higher there, and loses where it counts.
    bland = Scorecard({}, {"contrastive": 0.01, "bland_share": 0.40, "semantic_similarity": 0.91}, {})
    decision = {"promote": True, "current_version": 1, "current_nats_per_char": 2.0, "new_nats_per_char": 1.9}
    verdict = gate(decision, bland, production, GateTolerances())
    assert verdict["promote"] is False
    assert verdict["lost_on"] == [
        "answer quality contrastive 0.010 < production 0.120",
        "bland share 0.400 > production 0.020",
    ]
    fragments = Scorecard({}, production.answer, {"fragments": 2, "fallback": 0})
    assert gate(decision, fragments, production, GateTolerances())["lost_on"] == [
        "safety fragments 2 (must be 0)"
    ]
