"""The characters a regular expression's match can start with (for cheap vectorised prefilters).

Walks Python's parse tree of an anchored pattern. Returns None when the set cannot be bounded
(a pattern that may match the empty string, `.`, a negated class...), so callers fall back to
running the regex on everything: the prefilter can only ever skip texts the regex would reject.
"""

from __future__ import annotations

import re._parser as sre_parse
from re._constants import (
    ASSERT,
    AT,
    BRANCH,
    IN,
    LITERAL,
    MAX_REPEAT,
    MIN_REPEAT,
    NEGATE,
    RANGE,
    SUBPATTERN,
)
from typing import Any

#: Ranges wider than this are not expanded (a prefilter that lets everything through is useless).
_MAX_RANGE = 4096


def first_chars(pattern: str) -> frozenset[int] | None:
    """Code points that can start a match of `pattern`, or None if unbounded or maybe empty."""
    chars, nullable = _seq(list(sre_parse.parse(pattern)))
    if chars is None or nullable:
        return None
    return frozenset(chars)


def _seq(items: list[tuple[Any, Any]]) -> tuple[set[int] | None, bool]:
    """First set of a sequence and whether the whole sequence can match empty."""
    out: set[int] = set()
    for op, arg in items:
        chars, nullable = _item(op, arg)
        if chars is None:
            return None, False
        out |= chars
        if not nullable:
            return out, False
    return out, True


def _item(op: Any, arg: Any) -> tuple[set[int] | None, bool]:
    if op is AT or op is ASSERT:
        return (set(), True) if op is AT else (None, False)
    if op is LITERAL:
        return {arg}, False
    if op is IN:
        chars: set[int] = set()
        for kind, value in arg:
            if kind is NEGATE:
                return None, False
            if kind is LITERAL:
                chars.add(value)
            elif kind is RANGE and value[1] - value[0] <= _MAX_RANGE:
                chars.update(range(value[0], value[1] + 1))
            else:
                return None, False
        return chars, False
    if op is SUBPATTERN:
        return _seq(list(arg[-1]))
    if op is BRANCH:
        chars = set()
        nullable = False
        for branch in arg[1]:
            sub, sub_nullable = _seq(list(branch))
            if sub is None:
                return None, False
            chars |= sub
            nullable |= sub_nullable
        return chars, nullable
    if op is MAX_REPEAT or op is MIN_REPEAT:
        low, _, body = arg
        sub, sub_nullable = _seq(list(body))
        if sub is None:
            return None, False
        return sub, sub_nullable or low == 0
    return None, False
