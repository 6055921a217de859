"""Parse throughput of the project parser against a naive baseline, measured side by side.

    python bench/parse.py [--size-mb 200] [--formats android_ko,pc_ko,ios_ko,mac_csv] [--rss-mb 1000]
                          [--sources whatsapp,sms,telegram,line,messenger] [--sources-mb 50]

Generates large realistic exports (cached under bench/out/), then for each one runs, in a fresh
process pinned to one CPU, (a) the project parser (`iter_batches`, every batch materialised as an
Arrow table of canonical rows) and (b) a naive baseline written here: line-by-line `re.match` plus
`datetime.strptime` per message into dicts, the approach of the common open-source parsers, and
(c) a lean hand-written baseline (`re.match` with numeric groups, `int`, `datetime(...)`): the
honest bar, since `strptime` alone is most of (b)'s time. Prints MB/s, messages/s, peak RSS and
both ratios. Targets (issue 2): >= 5x the baseline,
>= 1M messages/s on one core, peak RSS flat in file size (< 300 MB on a 1 GB export).
Then the other apps' exports (WhatsApp, SMS, Telegram, LINE, Messenger) against their peers'
readers, through bench/parse_sources.py (issue 27: >= 3x, flat memory on a large SMS backup).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"

if TYPE_CHECKING:
    from parsers.kakao.render import Line


# -- generation --------------------------------------------------------------------------------


def _endless_chat() -> Iterator[Line]:
    """Many rooms' worth of chat back to back, with group events, dates within 2012-2024."""
    from parsers.kakao.synth import conversation

    seed = 0
    while True:
        # Each room is a few thousand messages over about three years.
        start = datetime(2012, 1, 1) + timedelta(days=seed % 1500)
        yield from conversation(20_000, seed=seed, others=("철수", "영희"), start=start)
        seed += 1


def generate(fmt: str, size_mb: int) -> Path:
    """A realistic export of about `size_mb` MB (cached)."""
    from parsers.kakao.render import RenderOptions, iter_export_lines

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{fmt}-{size_mb}mb.{'csv' if fmt == 'mac_csv' else 'txt'}"
    if path.exists():
        return path
    target = size_mb * 1024 * 1024
    temp = path.with_suffix(".tmp")
    with temp.open("w", encoding="utf-8", newline="") as handle:
        if fmt == "mac_csv":
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(["Date", "User", "Message"])
            for line in _endless_chat():
                writer.writerow([f"{line.ts:%Y-%m-%d %H:%M:%S}", line.speaker or "", line.text])
                if handle.tell() >= target:
                    break
        else:
            written = 0
            for piece in iter_export_lines(fmt, _endless_chat(), RenderOptions(room="엄마")):
                handle.write(piece)
                written += len(piece)
                if written * 2 >= target and handle.tell() >= target:
                    break
    temp.replace(path)
    return path


# -- the two parsers, run in child processes ---------------------------------------------------


def run_ours(path: Path) -> int:
    from parsers.base import ParseContext
    from parsers.exports import inspect_export, iter_batches

    info = inspect_export(path)
    ctx = ParseContext("bench", "bench", path.name, info.sha256, info.conversation_id, "Asia/Seoul")
    return sum(batch.messages.num_rows for batch in iter_batches(info, ctx))


_NAIVE = {
    "android_ko": (
        re.compile(r"^(\d{4}년 \d{1,2}월 \d{1,2}일 (?:오전|오후) \d{1,2}:\d{2}), (.+?) : (.*)$"),
        "%Y년 %m월 %d일 %p %I:%M",
    ),
    "ios_ko": (
        re.compile(r"^(\d{4}\. \d{1,2}\. \d{1,2}\. (?:오전|오후) \d{1,2}:\d{2}), (.+?) : (.*)$"),
        "%Y. %m. %d. %p %I:%M",
    ),
}
_PC_DAY = re.compile(r"^-+ (\d{4})년 (\d{1,2})월 (\d{1,2})일 \S+ -+$")
_PC_MSG = re.compile(r"^\[(.+?)\] \[((?:오전|오후) \d{1,2}:\d{2})\] (.*)$")


def run_naive(path: Path, fmt: str) -> int:
    """Line by line, regex + strptime per message, messages as dicts (the baseline)."""
    messages: list[dict[str, object]] = []
    if fmt == "mac_csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for date, user, text in reader:
                messages.append(
                    {"ts": datetime.strptime(date, "%Y-%m-%d %H:%M:%S"), "speaker": user, "text": text}
                )
                if len(messages) >= 100_000:
                    _flush(messages)
        return _flush(messages, final=True)
    day = ""
    with path.open(encoding="utf-8-sig") as handle:
        for raw in handle:
            line = raw.rstrip("\r\n")
            if fmt == "pc_ko":
                if d := _PC_DAY.match(line):
                    day = f"{d.group(1)}-{d.group(2)}-{d.group(3)}"
                    continue
                m = _PC_MSG.match(line)
                if m:
                    stamp = m.group(2).replace("오전", "AM").replace("오후", "PM")
                    ts = datetime.strptime(f"{day} {stamp}", "%Y-%m-%d %p %I:%M")
                    messages.append({"ts": ts, "speaker": m.group(1), "text": m.group(3)})
                elif messages:
                    messages[-1]["text"] = f"{messages[-1]['text']}\n{line}"
            else:
                pattern, stamp_format = _NAIVE[fmt]
                m = pattern.match(line)
                if m:
                    stamp = m.group(1).replace("오전", "AM").replace("오후", "PM")
                    ts = datetime.strptime(stamp, stamp_format)
                    messages.append({"ts": ts, "speaker": m.group(2), "text": m.group(3)})
                elif messages:
                    messages[-1]["text"] = f"{messages[-1]['text']}\n{line}"
            if len(messages) >= 100_000:
                _flush(messages)
    return _flush(messages, final=True)


_LEAN = {
    "android_ko": re.compile(
        r"^(\d{4})년 (\d{1,2})월 (\d{1,2})일 (오전|오후) (\d{1,2}):(\d{2}), (.+?) : (.*)$"
    ),
    "ios_ko": re.compile(r"^(\d{4})\. (\d{1,2})\. (\d{1,2})\. (오전|오후) (\d{1,2}):(\d{2}), (.+?) : (.*)$"),
}
_PC_LEAN = re.compile(r"^\[(.+?)\] \[(오전|오후) (\d{1,2}):(\d{2})\] (.*)$")


def _hour(half: str, hour: str) -> int:
    return int(hour) % 12 + (12 if half == "오후" else 0)


def run_lean(path: Path, fmt: str) -> int:
    """A lean hand-written baseline: `re.match` with numeric groups, `int`, `datetime(...)`."""
    messages: list[dict[str, object]] = []
    if fmt == "mac_csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for t, user, text in reader:
                ts = datetime(
                    int(t[:4]), int(t[5:7]), int(t[8:10]), int(t[11:13]), int(t[14:16]), int(t[17:19])
                )
                messages.append({"ts": ts, "speaker": user, "text": text})
                if len(messages) >= 100_000:
                    _flush(messages)
        return _flush(messages, final=True)
    year = month = day = 0
    with path.open(encoding="utf-8-sig") as handle:
        for raw in handle:
            line = raw.rstrip("\r\n")
            if fmt == "pc_ko":
                if d := _PC_DAY.match(line):
                    year, month, day = int(d.group(1)), int(d.group(2)), int(d.group(3))
                    continue
                if m := _PC_LEAN.match(line):
                    ts = datetime(year, month, day, _hour(m.group(2), m.group(3)), int(m.group(4)))
                    messages.append({"ts": ts, "speaker": m.group(1), "text": m.group(5)})
                elif messages:
                    messages[-1]["text"] = f"{messages[-1]['text']}\n{line}"
            elif m := _LEAN[fmt].match(line):
                y, mo, dd, half, h, mi, speaker, text = m.groups()
                ts = datetime(int(y), int(mo), int(dd), _hour(half, h), int(mi))
                messages.append({"ts": ts, "speaker": speaker, "text": text})
            elif messages:
                messages[-1]["text"] = f"{messages[-1]['text']}\n{line}"
            if len(messages) >= 100_000:
                _flush(messages)
    return _flush(messages, final=True)


_flushed = 0


def _flush(messages: list[dict[str, object]], final: bool = False) -> int:
    # Stream like the project parser does, so the comparison is about parsing, not memory;
    # the last message stays open because a continuation line may follow it.
    global _flushed
    keep = 0 if final else 1
    _flushed += len(messages) - keep
    del messages[: len(messages) - keep]
    return _flushed


def child(kind: str, path: Path, fmt: str) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    import parsers.kakao.export  # noqa: F401  # imports are not parsing; keep them out of the clock

    pa.scalar(False)  # pyarrow imports its pandas shim on first use of a Python scalar (0.3 s)

    start = time.perf_counter()
    runners = {
        "ours": lambda: run_ours(path),
        "naive": lambda: run_naive(path, fmt),
        "lean": lambda: run_lean(path, fmt),
    }
    count = runners[kind]()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"messages": count, "seconds": seconds, "peak_rss": peak}))


def measure(kind: str, path: Path, fmt: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), fmt],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--formats", default="android_ko,pc_ko,ios_ko,mac_csv")
    parser.add_argument(
        "--rss-mb", type=int, default=1000, help="size of the export for the RSS check (0: skip)"
    )
    parser.add_argument(
        "--sources",
        default="whatsapp,sms,telegram,line,messenger",
        help="the other apps' exports, each against its peers' reader (bench/parse_sources.py; '' skips)",
    )
    parser.add_argument("--sources-mb", type=int, default=50, help="size of those exports (SMS: 4x)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.child[2])
        return

    print(f"{'format':10} {'MB':>6} {'ours msg/s':>12} {'ours MB/s':>10} {'ours RSS':>9} "
          f"{'naive msg/s':>12} {'lean msg/s':>11} {'vs naive':>9} {'vs lean':>8}")  # fmt: skip
    for fmt in args.formats.split(","):
        path = generate(fmt, args.size_mb)
        mb = path.stat().st_size / 1024 / 1024
        ours = measure("ours", path, fmt)
        naive = measure("naive", path, fmt)
        lean = measure("lean", path, fmt)
        for name, other in (("naive", naive), ("lean", lean)):
            if ours["messages"] != other["messages"]:
                print(f"  note: message counts differ: ours {ours['messages']}, {name} {other['messages']}")
        ours_rate = ours["messages"] / ours["seconds"]
        naive_rate = naive["messages"] / naive["seconds"]
        lean_rate = lean["messages"] / lean["seconds"]
        ours_mb_s = mb / ours["seconds"]
        print(
            f"{fmt:10} {mb:6.0f} {ours_rate:12,.0f} {ours_mb_s:10.1f} {ours['peak_rss'] / 2**20:8.0f}M "
            f"{naive_rate:12,.0f} {lean_rate:11,.0f} "
            f"{ours_rate / naive_rate:8.1f}x {ours_rate / lean_rate:7.1f}x"
        )
    if args.sources:
        others = [sys.executable, str(ROOT / "bench" / "parse_sources.py"), "--sources", args.sources]
        subprocess.run(
            [*others, "--size-mb", str(args.sources_mb), "--sms-mb", str(4 * args.sources_mb)], check=True
        )
    if args.rss_mb:
        small = measure("ours", generate("android_ko", args.size_mb), "android_ko")
        big = measure("ours", generate("android_ko", args.rss_mb), "android_ko")
        print(
            f"peak RSS, android_ko: {args.size_mb} MB export {small['peak_rss'] / 2**20:.0f} MB, "
            f"{args.rss_mb} MB export {big['peak_rss'] / 2**20:.0f} MB "
            f"({big['messages'] / big['seconds']:,.0f} msg/s)"
        )


if __name__ == "__main__":
    main()
