"""Share one recording's transcript out over the utterances its pauses cut it into.

A platform recording comes with one transcript, but silence splitting cuts it into several
utterances. People pause between phrases, so the words are cut at word boundaries such that each
utterance's share of the spoken units (Hangul syllables; Latin letters count a third) matches its
share of the speaking time, with a bonus for cuts after punctuation. When no cut fits (a part
would be spoken at under half or over twice the recording's rate), nothing is attached: a wrong
transcript teaches the voice model worse than none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

_PUNCT_END = re.compile(r"[.,!?…~。、]$")
PUNCTUATION_BONUS = 0.02  # in squared share units: prefer a pause where the text has a comma


def speech_units(text: str) -> float:
    """Rough speaking length: Hangul syllables and digits count 1, Latin letters 1/3."""
    units = 0.0
    for ch in text:
        if "\uac00" <= ch <= "\ud7a3" or ch.isdigit():
            units += 1
        elif ch.isalpha():
            units += 1 / 3
    return units


def split_transcript(
    transcript: str, durations: Sequence[float], max_rate_ratio: float = 2.0
) -> list[str] | None:
    """One text per duration (in order), or None when the words cannot be shared out credibly."""
    words = transcript.split()
    k = len(durations)
    if k == 0 or len(words) < k:
        return None
    if k == 1:
        return [" ".join(words)]
    units = [speech_units(w) for w in words]
    total_units, total_time = sum(units), sum(durations)
    if total_units <= 0 or total_time <= 0:
        return None
    prefix = [0.0]
    for u in units:
        prefix.append(prefix[-1] + u)
    target = [d / total_time for d in durations]
    # best[j][i]: cost of putting words[:i] into the first j utterances; back[j][i]: where j-1 ended.
    inf = float("inf")
    best = [[inf] * (len(words) + 1) for _ in range(k + 1)]
    back = [[0] * (len(words) + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for j in range(1, k + 1):
        for i in range(j, len(words) - (k - j) + 1):
            bonus = PUNCTUATION_BONUS if j < k and _PUNCT_END.search(words[i - 1]) else 0.0
            for start in range(j - 1, i):
                if best[j - 1][start] == inf:
                    continue
                share = (prefix[i] - prefix[start]) / total_units
                cost = best[j - 1][start] + (share - target[j - 1]) ** 2 - bonus
                if cost < best[j][i]:
                    best[j][i], back[j][i] = cost, start
    cuts = [len(words)]
    for j in range(k, 0, -1):
        cuts.append(back[j][cuts[-1]])
    cuts.reverse()
    parts = [" ".join(words[a:b]) for a, b in pairwise(cuts)]
    rate = total_units / total_time
    for part, duration in zip(parts, durations, strict=True):
        part_rate = speech_units(part) / duration
        if not rate / max_rate_ratio <= part_rate <= rate * max_rate_ratio:
            return None
    return parts
