"""Personal data redaction for Korean chats, with consistent typed pseudonyms per owner.

What is redacted: Korean mobile and landline numbers (010-1234-5678, 01012345678,
010 1234 5678, +82 10-..., 02-..., 031-...), 주민등록번호 (YYMMDD-NNNNNNN, with or without the
dash; the old checksum is not required because numbers issued since Oct 2020 fail it), card
numbers (16 or 15 digits, Luhn-checked), bank account numbers (dashed groups of 10-16 digits, or
a bare 10-14 digit run in a message that mentions a bank or transfer), e-mail addresses, and
street addresses in the road-name (도로명) or lot-number (번지) forms. URLs are already replaced
by `<url>` during normalisation, tokens and all.

What is not: names of people (third parties are not guessed at), nicknames, places without a
street number, numbers shaped like nothing above.

Pseudonyms: the same value maps to the same `<phone_1>` everywhere in one build (phones and cards
compared by digits only). The mapping is not stored anywhere: numbering follows the first
appearance in (ts, message_id) order, so a rebuild from the same input reproduces it, and
nothing that could reverse it exists outside the lake.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from parsers.arrays import bool_mask
from tasks.datasets.clean import StepResult, empty_audit

_BANKS = (
    r"은행|계좌|입금|송금|이체|국민|신한|우리|하나|농협|기업|카카오뱅크|카뱅|토스|새마을|우체국"
    r"|케이뱅크|IBK|KB"
)
_PROVINCES = (
    r"서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|충북|충남|충청|전북|전남|전라|경북|경남|경상|제주"
)


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _phone_key(value: str) -> str:
    digits = _digits(value)
    return "0" + digits[2:] if digits.startswith("82") else digits


def _luhn(value: str) -> bool:
    digits = [int(c) for c in _digits(value)]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _account_digits_ok(value: str) -> bool:
    return 10 <= len(_digits(value)) <= 16


@dataclass(frozen=True)
class Rule:
    """One kind of personal data: how to find it, compare it, and confirm it."""

    kind: str
    pattern: re.Pattern[str]
    key: Callable[[str], str] = _digits
    confirm: Callable[[str], bool] | None = None
    #: Only applies to texts that match this (e.g. a bank word for bare digit runs).
    context: re.Pattern[str] | None = None


# Order matters: the more specific shapes first, so a card is not taken for an account.
RULES: tuple[Rule, ...] = (
    Rule("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), key=str.lower),
    Rule(
        "rrn",
        re.compile(r"(?<!\d)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?-?\s?[1-8]\d{6}(?!\d)"),
    ),
    Rule(
        "card",
        re.compile(r"(?<!\d)(?:\d{4}[ -]?){3}\d{4}(?!\d)|(?<!\d)\d{4}[ -]?\d{6}[ -]?\d{5}(?!\d)"),
        confirm=_luhn,
    ),
    Rule(
        "phone",
        re.compile(r"(?<![\d+])(?:\+82[ -]?|0)(?:1[016789]|2|[3-6][1-5]|70)[ .)-]?\d{3,4}[ .-]?\d{4}(?!\d)"),
        key=_phone_key,
    ),
    Rule(
        "account",
        re.compile(r"(?<!\d)\d{2,6}-\d{2,7}-\d{2,7}(?:-\d{1,4})?(?!\d)"),
        confirm=_account_digits_ok,
    ),
    Rule("account", re.compile(r"(?<!\d)\d{10,14}(?!\d)"), context=re.compile(_BANKS)),
    Rule(
        "address",
        # A road name needs its district before it (중구 세종대로 110) and a number that ends the
        # word: "학교로 3시에" is not an address, "세종대로 110" alone is not redacted (documented).
        re.compile(
            rf"(?:(?:{_PROVINCES})\S*\s+)?\S+[시군구]\s+(?:\S+[읍면동]\s+)?\S+(?:로|길)\s?\d+(?:-\d+)?"
            r"(?=$|[\s,.)!?~]|번길|동|호)(?:번길\s?\d+)?(?:,?\s?\d+동)?(?:\s?\d+호)?"
        ),
        key=lambda v: re.sub(r"\s+", "", v),
    ),
    Rule("address", re.compile(r"\S+[동리]\s?\d+(?:-\d+)?번지"), key=lambda v: re.sub(r"\s+", "", v)),
)

#: Texts without any of these cannot hold a rule's match: they skip the Python pass entirely.
PREFILTER = r"[0-9]{4}|@|[0-9]{2}-[0-9]|[로길] ?[0-9]|번지"

#: Patterns a clean text must not match (the quality gate checks them); kept deliberately
#: narrower than the rules so that a token like <phone_1> or an ordinary number does not fail it.
LEFTOVER_PATTERNS: tuple[str, ...] = (
    r"(?<!\d)01[016789][ .-]?\d{3,4}[ .-]?\d{4}(?!\d)",
    r"(?<!\d)\d{6}\s?-\s?[1-8]\d{6}(?!\d)",
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
)


@dataclass
class Pseudonymizer:
    """Typed, consistent pseudonyms: the n-th distinct value of a kind becomes `<kind_n>`."""

    seen: dict[str, dict[str, int]] = field(default_factory=dict)

    def token(self, kind: str, key: str) -> str:
        """The pseudonym of one value."""
        values = self.seen.setdefault(kind, {})
        number = values.setdefault(key, len(values) + 1)
        return f"<{kind}_{number}>"


def redact(text: str, pseudonyms: Pseudonymizer) -> tuple[str, Counter[str]]:
    """Replace every personal value in `text`; return the new text and counts by kind."""
    counts: Counter[str] = Counter()
    for rule in RULES:
        if rule.context is not None and not rule.context.search(text):
            continue

        def replace(match: re.Match[str], rule: Rule = rule) -> str:
            value = match.group(0)
            if rule.confirm is not None and not rule.confirm(value):
                return value
            counts[rule.kind] += 1
            return pseudonyms.token(rule.kind, rule.key(value))

        text = rule.pattern.sub(replace, text)
    return text, counts


def redact_messages(df: pd.DataFrame, pseudonyms: Pseudonymizer | None = None) -> StepResult:
    """The cleaning step: redact `text` of every row (rows must be in (ts, message_id) order).

    Changed rows get an audit entry naming what was replaced (counts by kind, never values).
    """
    pseudonyms = pseudonyms or Pseudonymizer()
    if df.empty:
        return StepResult(df, empty_audit())
    texts = pa.array(df["text"].astype("str").to_numpy(), pa.string())
    maybe = np.flatnonzero(bool_mask(pc.match_substring_regex(texts, PREFILTER)))
    out = df["text"].astype("str").to_numpy(copy=True)
    changed_ids: list[str] = []
    reasons: list[str] = []
    ids = df["message_id"].to_numpy()
    for row in maybe.tolist():
        new, counts = redact(out[row], pseudonyms)
        if counts:
            out[row] = new
            changed_ids.append(ids[row])
            reasons.append("redacted " + ", ".join(f"{kind} x{n}" for kind, n in sorted(counts.items())))
    result = df.copy()
    result["text"] = pd.Series(out, index=df.index, dtype="str")
    audit = pd.DataFrame(
        {"message_id": changed_ids, "step": "redact_pii", "action": "changed", "reason": reasons}
    )
    return StepResult(result, audit.astype("str") if len(audit) else empty_audit())
