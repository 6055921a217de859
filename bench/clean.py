"""Time to clean, redact, gate and pair 1M messages, against a naive per-row baseline.

    python bench/clean.py [--messages 1000000]

The project path runs the dataset build's own steps (tasks/datasets/build.py: cleaning_steps, gates,
turns, pairs) on a synthetic owner with PII sprinkled in. The baseline does the text work the
straightforward way, one row at a time in Python: NFC, the same substitutions with `re.sub`, and
the same redaction rules on every text (no vectorised prefilter). Prints seconds per stage,
messages/s and the ratio on the part both do (normalise + redact).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parsers.kakao.synth import conversation
from schemas.quality import message_suite, pair_suite
from tasks.datasets import clean
from tasks.datasets.build import DatasetOptions, cleaning_steps
from tasks.datasets.quality import run_gate
from tasks.datasets.turns import build_pairs, build_turns
from tasks.trust.pii import LEFTOVER_PATTERNS, Pseudonymizer, redact


def synthetic_messages(n: int) -> pd.DataFrame:
    rows: list[tuple[str, datetime, str | None, str, str]] = []
    room = 0
    while len(rows) < n:  # rooms of 20,000 messages (about three years each), like real owners
        start = datetime(2015, 1, 1) + timedelta(days=room * 7)
        for line in conversation(min(20_000, n - len(rows)), seed=room, others=("철수",), start=start):
            kind = (
                "system"
                if line.speaker is None
                else ("photo" if line.text in ("사진", "사진 3장") else "text")
            )
            rows.append((f"bench0000000000000000-{len(rows):010d}", line.ts, line.speaker, line.text, kind))
        room += 1
    df = pd.DataFrame(rows, columns=["message_id", "ts", "speaker", "text", "kind"])
    df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("Asia/Seoul").dt.tz_convert("UTC")
    df["owner_id"] = "bench"
    df["conversation_id"] = "kakao-" + (df.index // 20_000).astype(str)
    df["source"] = "kakao_android_txt"
    df["line_no"] = df.index + 1
    return df


def naive_text_pass(texts: list[str]) -> list[str]:
    zero_width = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
    url = re.compile(r"(?:https?://|www\.)[^\s<>\"']+")
    spaces = re.compile("[ \t\u00a0\u3000]+")
    laughs = [re.compile(f"{c}{{7,}}") for c in clean.LAUGHTER_CHARS]
    pseudonyms = Pseudonymizer()
    out = []
    for text in texts:
        text = unicodedata.normalize("NFC", text)
        text = zero_width.sub("", text)
        text = url.sub("<url>", text)
        text = spaces.sub(" ", text)
        for pattern, char in zip(laughs, clean.LAUGHTER_CHARS, strict=True):
            text = pattern.sub(char * 6, text)
        text, _ = redact(text.strip(), pseudonyms)
        out.append(text)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    start = time.perf_counter()
    df = synthetic_messages(args.messages)
    print(f"generated {len(df):,} messages in {time.perf_counter() - start:.1f}s")
    run_gate("warm-up", df.head(3).assign(ts_s=0), message_suite(LEFTOVER_PATTERNS, -1, 1))  # GX import/setup

    options = DatasetOptions()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    timings: dict[str, float] = {}
    kept = df
    for name, step in cleaning_steps(options, now):
        t = time.perf_counter()
        result = step(kept)
        timings[name] = time.perf_counter() - t
        print(f"  {name:17} {len(kept):>9,} -> {len(result.kept):>9,}  {timings[name]:6.2f}s")
        kept = result.kept
    kept["is_persona"] = kept["speaker"] == "엄마"
    t = time.perf_counter()
    view = kept.assign(ts_s=(kept["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1))
    run_gate("messages", view, message_suite(LEFTOVER_PATTERNS, 0, 2_000_000_000))
    timings["gate_messages"] = time.perf_counter() - t
    t = time.perf_counter()
    turns = build_turns(kept, options.turns)
    timings["turns"] = time.perf_counter() - t
    t = time.perf_counter()
    pairs = build_pairs(turns, "bench", "mom", options.turns)
    timings["pairs"] = time.perf_counter() - t
    t = time.perf_counter()
    from tasks.datasets.build import _pair_view

    run_gate("pairs", _pair_view(pairs), pair_suite(LEFTOVER_PATTERNS, ["엄마"], 1))
    timings["gate_pairs"] = time.perf_counter() - t
    total = sum(timings.values())
    for name in ("gate_messages", "turns", "pairs", "gate_pairs"):
        print(f"  {name:17} {timings[name]:6.2f}s")
    rate = len(df) / total
    print(f"total {total:.1f}s for {len(df):,} messages: {rate:,.0f} messages/s, {pairs.num_rows:,} pairs")

    texts = df.loc[df["kind"] == "text", "text"].tolist()
    t = time.perf_counter()
    naive_text_pass(texts)
    naive = time.perf_counter() - t
    ours = timings["normalize_text"] + timings["redact_pii"]
    print(f"normalise+redact {len(texts):,} texts: ours {ours:.2f}s, naive per-row {naive:.2f}s", end="")
    print(f", ratio {naive / ours:.1f}x")


if __name__ == "__main__":
    main()
