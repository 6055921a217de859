"""Does the persona answer what was said? Each chat mode against a plain-BM25 baseline, on two corpora.

    python bench/relevance.py [--steps 300] [--days 160] [--seed 3] [--embedder DIR] [--eval-dir DIR]

Two corpora, each restored as a flow restores it (ingest, dataset, model with `--steps`, pairs
indexed with vectors into the project's local search server), so chat uses its calibrated ranker:
- `own`: a generated family chat where the mother's reply depends on the topic of what her son
  said (24 topics, training phrasings, replies that name the topic, 72 held-out paraphrases that
  never occur in the export); a reply fits when it is one of the topic's replies or names it;
- `dev`: the development corpus we did not write (`../shared/eval/`, a father and his daughter,
  32 topics, 96 held-out paraphrases, bland filler mixed in on purpose); a reply fits when, among
  all topics, it is closest by character bigrams to that topic's replies (as its generator says).
Every held-out paraphrase is asked, one fresh conversation each, of each chat mode (`retrieve`,
`generate`, `hybrid`) and of the baseline of the original platform (the reply to the nearest stored
message by plain BM25: no vectors, no model). Per answerer: the on-topic share, the bland share
(lines the persona says to anything, tasks/replies/blandness.py), fragments (not a whole
utterance), the share answered with the fallback line or nothing (BM25 finds no word in common),
pseudonyms. Per component: response selection (recall@1 of
10, MRR) of the topic's real replies against other topics' (tasks/training/conversation_eval.py).
`--embedder` measures with a sentence encoder from a local Hugging Face directory.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: topic -> (what the son says in the export, what mom answers (naming the topic), held-out paraphrases)
TOPICS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "시험": (
        ["엄마 나 내일 시험이야", "시험 공부 너무 힘들어"],
        ["시험 잘 볼 거야 우리 아들 화이팅", "시험 끝나면 맛있는 거 해줄게"],
        ["내일 중간고사 봐", "기말 준비하느라 죽겠어", "테스트 망칠까 봐 걱정돼"],
    ),
    "밥": (
        ["엄마 밥 먹었어", "점심 뭐 먹었어"],
        ["밥은 꼭 챙겨 먹어야 한다", "엄마는 밥 먹었지 너도 밥 먹어"],
        ["저녁 식사는 했어?", "끼니 거르지 않았어?", "오늘 뭐 먹었는지 궁금해"],
    ),
    "감기": (
        ["엄마 나 감기 걸렸어", "목이 아프고 열나"],
        ["감기엔 푹 자고 따뜻한 물 마셔", "감기약 먹고 일찍 자라"],
        ["콧물이 계속 나와", "몸살 기운이 있어", "기침이 안 멈춰"],
    ),
    "날씨": (
        ["오늘 너무 추워", "밖에 눈 와"],
        ["날씨 추우니까 목도리 꼭 해", "날씨 쌀쌀하다 옷 따뜻하게 입어"],
        ["완전 한파야", "영하 십도래", "바람이 엄청 차가워"],
    ),
    "돈": (
        ["엄마 용돈 좀", "이번 달 돈이 모자라"],
        ["돈 아껴 쓰고 모자라면 말해", "돈 보내줄게 계좌 확인해"],
        ["생활비가 빠듯해", "월세 내니까 남는 게 없어", "지갑이 텅 비었어"],
    ),
    "취업": (
        ["면접 보고 왔어", "취업이 안 돼서 속상해"],
        ["취업은 때가 있어 조급해하지 마", "취업 준비 고생 많다 잘 될 거야"],
        ["서류 또 떨어졌어", "입사 시험 봤어", "회사 지원서 쓰는 중이야"],
    ),
    "운전": (
        ["나 운전 연수 받아", "차 사고 날 뻔했어"],
        ["운전할 땐 천천히 조심해", "운전 중에 전화 절대 하지 마"],
        ["도로 연수 첫날이야", "주차가 너무 어려워", "고속도로 처음 달렸어"],
    ),
    "생일": (
        ["엄마 생일 축하해", "내 생일 기억해?"],
        ["생일 축하한다 우리 아들", "생일엔 미역국 먹어야지"],
        ["오늘 나 태어난 날이야", "케이크에 초 꽂았어", "미역국 끓여 먹었어"],
    ),
    "잠": (
        ["요즘 잠이 안 와", "밤새 못 잤어"],
        ["잠 못 자면 몸 상한다 일찍 누워", "잠 안 오면 따뜻한 우유 마셔"],
        ["불면증 같아", "새벽 세 시인데 눈이 말똥말똥해", "자도 자도 피곤해"],
    ),
    "여행": (
        ["나 제주도 여행 가", "친구들이랑 여행 계획 짰어"],
        ["여행 조심히 다녀오고 사진 보내", "여행 가서 맛있는 거 많이 먹어"],
        ["비행기 표 끊었어", "휴가 때 부산 갈 거야", "해외로 놀러 가"],
    ),
    "아빠": (
        ["아빠랑 싸웠어", "아빠 요즘 어때"],
        ["아빠한테 먼저 전화 드려", "아빠도 너 많이 보고 싶어 하셔"],
        ["아버지가 화나셨어", "부친 생신 언제였지", "아빠 건강은 괜찮으셔?"],
    ),
    "운동": (
        ["헬스 시작했어", "오늘 달리기 했어"],
        ["운동 무리하지 말고 꾸준히 해", "운동하고 스트레칭 꼭 해"],
        ["필라테스 등록했어", "만 보 걸었어", "근육통이 심해"],
    ),
    "이사": (
        ["나 이사해", "새 집 구했어"],
        ["이사 짐 싸는 거 엄마가 도와줄게", "이사 가면 이웃한테 인사해"],
        ["다음 주에 짐 옮겨", "전셋집 계약했어", "원룸으로 옮기게 됐어"],
    ),
    "결혼": (
        ["여자친구랑 결혼하고 싶어", "결혼식 날짜 잡았어"],
        ["결혼은 서두르지 말고 잘 생각해", "결혼 축하한다 행복하게 살아"],
        ["프러포즈 했어", "상견례 하기로 했어", "청첩장 나왔어"],
    ),
    "강아지": (
        ["강아지가 아파", "우리 강아지 산책시켰어"],
        ["강아지 병원 데려가 봐", "강아지 밥 잘 챙겨 줘"],
        ["멍멍이가 밥을 안 먹어", "반려견이 토했어", "댕댕이랑 공원 다녀왔어"],
    ),
    "회사": (
        ["회사 일이 너무 많아", "상사한테 혼났어"],
        ["회사 일 힘들어도 건강 먼저 챙겨", "회사에서 너무 참지만 말고"],
        ["야근 또 해", "팀장님이 깨졌어", "직장 스트레스 심해"],
    ),
    "김치": (
        ["김치 다 먹었어", "김치 보내줄 수 있어?"],
        ["김치 새로 담갔으니 보내줄게", "김치찌개 끓여 먹어라"],
        ["배추 절였어?", "깍두기 남은 거 있어?", "반찬이 다 떨어졌어"],
    ),
    "병원": (
        ["병원 다녀왔어", "건강검진 받았어"],
        ["병원에서 뭐래 걱정된다", "병원 결과 나오면 꼭 알려줘"],
        ["의사 선생님 만났어", "피 검사 했어", "진료 예약했어"],
    ),
    "친구": (
        ["친구랑 싸웠어", "친구들 만났어"],
        ["친구랑은 먼저 사과하는 게 이기는 거야", "친구 소중히 해라"],
        ["동창 모임 다녀왔어", "베프가 서운하게 했어", "절친이 이사 간대"],
    ),
    "공부": (
        ["공부가 안 돼", "도서관 왔어"],
        ["공부 너무 무리하지 마라", "공부하다 쉬엄쉬엄 해"],
        ["집중이 하나도 안 돼", "독서실에서 밤샜어", "과제가 산더미야"],
    ),
    "비": (
        ["비 와", "우산 안 가져왔어"],
        ["비 오니까 우산 꼭 챙겨", "비 맞지 말고 택시 타"],
        ["소나기 쏟아져", "장마 시작했대", "밖에 폭우야"],
    ),
    "할머니": (
        ["할머니 댁 다녀왔어", "할머니 보고 싶어"],
        ["할머니한테 자주 전화 드려", "할머니가 너 많이 기다리셔"],
        ["외할머니 뵙고 왔어", "시골 할매 댁 갔다 왔어", "조모 생신이야"],
    ),
    "휴대폰": (
        ["폰 액정 깨졌어", "새 핸드폰 샀어"],
        ["휴대폰 그만 보고 눈 좀 쉬어", "휴대폰 바꿨으면 번호 알려줘"],
        ["스마트폰 떨어뜨렸어", "아이폰 새로 샀어", "배터리가 금방 닳아"],
    ),
    "명절": (
        ["추석에 내려갈게", "설날 언제 와?"],
        ["명절엔 꼭 집에 와라", "명절 음식 많이 해 놓을게"],
        ["한가위에 고향 가", "구정에 기차 예매했어", "차례 지내러 갈게"],
    ),
}
CHITCHAT = ["ㅋㅋㅋ", "응", "알겠어", "고마워 엄마", "사랑해"]


def _export(path: Path, days: int, seed: int) -> None:
    from parsers.kakao.render import Line, RenderOptions, render_export

    rng = random.Random(seed)
    lines, ts = [], datetime(2023, 1, 1, 9, 0)
    topics = sorted(TOPICS)
    for _ in range(days):
        ts += timedelta(days=1)
        for exchange in range(3):
            at = ts + timedelta(hours=3 * exchange)
            said, replies, _ = TOPICS[rng.choice(topics)]
            lines.append(Line(at, "나", rng.choice(said)))
            lines.append(Line(at + timedelta(minutes=1), "엄마", rng.choice(replies)))
            lines.append(Line(at + timedelta(minutes=2), "나", rng.choice(CHITCHAT)))
    path.write_text(render_export("android_ko", lines, RenderOptions(room="엄마")), encoding="utf-8")


def _fits(reply: str, topic: str) -> bool:
    return reply in TOPICS[topic][1] or topic in reply


def _bigrams(text: str) -> set[str]:
    text = re.sub(r"\s+", " ", text.strip())
    return {text[i : i + 2] for i in range(len(text) - 1)}


def closest_topic(reply: str, topics: dict[str, list[str]]) -> str | None:
    """The topic whose replies are closest to `reply` by character bigrams (Dice); None on a tie or none."""
    grams = _bigrams(reply)
    best, best_score, tie = None, 0.0, False
    for topic, replies in topics.items():
        score = max(
            (2 * len(grams & g) / (len(grams) + len(g)) for g in map(_bigrams, replies) if g), default=0.0
        )
        if score > best_score + 1e-12:
            best, best_score, tie = topic, score, False
        elif score > 0 and abs(score - best_score) <= 1e-12:
            tie = True
    return None if tie or not grams else best


@dataclass
class Corpus:
    """One benchmark corpus: an export, whom to restore, what to ask and how to judge."""

    name: str
    export: Path
    persona: str
    asked: list[tuple[str, str]]  # (topic, held-out paraphrase)
    replies: dict[str, list[str]]  # topic -> the persona's real replies of that topic
    fits: Callable[[str, str], bool]


def own_corpus(folder: Path, days: int, seed: int) -> Corpus:
    """The generated mother/son chat of this file."""
    _export(folder / "own.txt", days, seed)
    asked = [(topic, p) for topic, (_, _, paraphrases) in sorted(TOPICS.items()) for p in paraphrases]
    return Corpus("own", folder / "own.txt", "엄마", asked, {t: v[1] for t, v in TOPICS.items()}, _fits)


def dev_corpus(folder: Path) -> Corpus:
    """The development corpus we did not write (father and daughter)."""
    prompts = json.loads((folder / "dev_prompts.json").read_text(encoding="utf-8"))
    replies = {p["topic"]: list(p["replies"]) for p in prompts}
    asked = [(p["topic"], p["prompt"]) for p in prompts]

    def fits(reply: str, topic: str) -> bool:
        return closest_topic(reply, replies) == topic

    return Corpus("dev", folder / "dev_android_ko.txt", "아빠", asked, replies, fits)


def measure(
    corpus: Corpus, args: argparse.Namespace, embedder: Any, client: Any, lake: Path
) -> dict[str, Any]:
    """Restore the corpus's persona, ask every paraphrase of every answerer; rows and selection."""
    from infra.search import hits_of
    from infra.settings import Settings
    from infra.storage import open_storage
    from models.data import Turn
    from models.train import TrainConfig
    from schemas.search import PAIRS_ALIAS
    from tasks.datasets.build import build_dataset
    from tasks.indexing.indexer import index_persona_pairs
    from tasks.ingest.uploads import ingest_export
    from tasks.replies.chat import FALLBACK_LINE, MODES, PersonaChat
    from tasks.training.conversation_eval import (
        HeldOut,
        hybrid_scorer,
        likelihood_scorer,
        read_held_out,
        response_selection,
        similarity_scorer,
    )
    from tasks.training.train import ModelOptions, train_persona

    owner = f"bench-{corpus.name}"
    storage = open_storage(f"file://{lake}")
    ingest_export(corpus.export, owner, storage, Settings())
    dataset = build_dataset(storage, owner, corpus.persona)
    persona = dataset.persona_id
    train_persona(storage, owner, persona, dataset.version,
                  ModelOptions(train=TrainConfig(max_steps=args.steps)), embedder)  # fmt: skip
    index_persona_pairs(storage, client, owner, persona, dataset.version, embedder)
    client.indices.refresh(index=PAIRS_ALIAS)
    memory = [
        p
        for split in ("train", "validation")
        for p in read_held_out(storage, f"{dataset.prefix}/{split}.parquet")
    ]
    whole = {m.reply for m in memory} | {part for m in memory for part in m.parts}

    def bm25(message: str) -> str:
        query = {"bool": {"filter": [{"term": {"owner_id": owner}}, {"term": {"persona_id": persona}}],
                          "must": [{"match": {"prompt": message}}]}}  # fmt: skip
        hits = hits_of(client.search(index=PAIRS_ALIAS, routing=owner, query=query, size=1))
        return str(hits[0]["reply"]) if hits else ""

    answerers: dict[str, Callable[[str], str]] = {"baseline (BM25 nearest message)": bm25}
    for mode in MODES:
        answerers[mode] = _asker(PersonaChat(storage, owner, persona, None, client, embedder, mode))
    profile = PersonaChat(storage, owner, persona, None, None, None, "generate").calibration.profile
    rows: dict[str, dict[str, Any]] = {}
    for name, answer in answerers.items():
        start = time.perf_counter()
        replies = [(topic, answer(message)) for topic, message in corpus.asked]
        n = len(replies)
        rows[name] = {
            "on_topic": sum(corpus.fits(r, t) for t, r in replies) / n,
            "bland": sum(r.strip() != "" and r != FALLBACK_LINE and profile.is_bland(r) for _, r in replies)
            / n,
            "fragments": sum(
                r not in whole and r != FALLBACK_LINE and profile.is_fragment(r) for _, r in replies
            ),
            "fallback": sum(r == FALLBACK_LINE or not r.strip() for _, r in replies) / n,  # or nothing at all
            "pseudonyms": sum("<" in r for _, r in replies),
            "ms_per_reply": 1000 * (time.perf_counter() - start) / n,
        }
    held_out = [HeldOut(topic, [Turn(p, False)], corpus.replies[topic][0]) for topic, p in corpus.asked]
    pool = [HeldOut(t, [], r) for t, replies in corpus.replies.items() for r in replies]
    model = PersonaChat(storage, owner, persona, None, None, None, "generate")
    similarity, likelihood = similarity_scorer(embedder), likelihood_scorer(model.likelihood)
    selection = {
        "similarity": response_selection(held_out, pool, similarity),
        "likelihood": response_selection(held_out, pool, likelihood),
        "hybrid": response_selection(held_out, pool, hybrid_scorer(likelihood, similarity)),
    }
    return {"rows": rows, "selection": selection, "pairs": dataset.manifest["counts"]["pairs_train"]}


def _asker(chat: Any) -> Callable[[str], str]:
    def answer(message: str) -> str:
        chat.history = []  # one fresh conversation per question
        return str(chat.reply(message).text)

    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--days", type=int, default=160)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--embedder", help="a local sentence-encoder directory (default: the bundled one)")
    shared_eval = Path(__file__).resolve().parents[2] / "shared" / "eval"
    parser.add_argument("--eval-dir", type=Path, default=shared_eval, help="the development corpus")
    parser.add_argument("--only", choices=("own", "dev"), help="one corpus only")
    args = parser.parse_args()

    from infra.search import connect
    from infra.services import LocalElasticsearch, free_port
    from infra.text_features import load_embedder

    tmp = Path(tempfile.mkdtemp(prefix="rm-bench-relevance-"))
    corpora = []
    if args.only != "dev":
        corpora.append(own_corpus(tmp, args.days, args.seed))
    if args.only != "own":
        if (args.eval_dir / "dev_prompts.json").exists():
            corpora.append(dev_corpus(args.eval_dir))
        else:
            print(f"no development corpus at {args.eval_dir} (--eval-dir): measured on our own only")
    search = LocalElasticsearch(tmp / "es", free_port())
    client = connect(search.up())
    embedder = load_embedder(args.embedder)
    try:
        results = {c.name: measure(c, args, embedder, client, tmp / "lake") for c in corpora}
    finally:
        search.down()
    print(f"embedder {embedder.name}, {args.steps} training steps")
    for corpus in corpora:
        result = results[corpus.name]
        print(f"\n{corpus.name}: {len(corpus.replies)} topics, {len(corpus.asked)} held-out paraphrases "
              f"(never in the export); {result['pairs']} train pairs")  # fmt: skip
        print(f"{'answerer':34} {'on topic':>9} {'bland':>6} {'fragments':>9} {'fallback':>8} "
              f"{'pseudonyms':>10} {'ms/reply':>9}")  # fmt: skip
        for name, row in result["rows"].items():
            print(f"{name:34} {row['on_topic']:>9.1%} {row['bland']:>6.1%} {row['fragments']:>9} "
                  f"{row['fallback']:>8.1%} {row['pseudonyms']:>10} {row['ms_per_reply']:>9.0f}")  # fmt: skip
        base = result["rows"]["baseline (BM25 nearest message)"]["on_topic"]
        for mode in ("retrieve", "generate", "hybrid"):
            share = result["rows"][mode]["on_topic"]
            print(f"{mode}: {share / base if base else float('inf'):.2f}x the baseline's share")
        print(f"{'component':12} {'recall@1/10':>11} {'MRR':>6}")
        for name, sel in result["selection"].items():
            print(f"{name:12} {sel.recall_at_1:>11.3f} {sel.mrr:>6.3f}")


if __name__ == "__main__":
    main()
