"""Quality gate suites, as data: which expectations a clean message table and a pair table meet.

Each entry is (expectation class name in `great_expectations.expectations`, keyword arguments).
tasks/datasets/quality.py turns them into GX suites; keeping them here keeps the contract in one place
and this module free of the (slow to import) GX package.
"""

from __future__ import annotations

from typing import Any

from schemas.message import MESSAGE_KINDS

ExpectationSpec = tuple[str, dict[str, Any]]


def message_suite(leftover_pii: tuple[str, ...], earliest_s: int, latest_s: int) -> list[ExpectationSpec]:
    """Clean messages: ids unique, plausible times, speakers known, kinds known, no PII left."""
    return [
        ("ExpectColumnValuesToBeUnique", {"column": "message_id"}),
        ("ExpectColumnValuesToNotBeNull", {"column": "ts_s"}),
        ("ExpectColumnValuesToBeBetween", {"column": "ts_s", "min_value": earliest_s, "max_value": latest_s}),
        ("ExpectColumnValuesToNotBeNull", {"column": "speaker"}),
        ("ExpectColumnValuesToBeInSet", {"column": "kind", "value_set": list(MESSAGE_KINDS)}),
        ("ExpectColumnValuesToNotMatchRegexList", {"column": "text", "regex_list": list(leftover_pii)}),
    ]


def pair_suite(
    leftover_pii: tuple[str, ...], persona_names: list[str], min_pairs: int
) -> list[ExpectationSpec]:
    """Training pairs: context and reply present, reply by the persona, splits by session, enough rows."""
    return [
        ("ExpectTableRowCountToBeBetween", {"min_value": min_pairs}),
        ("ExpectColumnValuesToBeUnique", {"column": "pair_id"}),
        ("ExpectColumnValuesToBeBetween", {"column": "context_turns", "min_value": 1}),
        ("ExpectColumnValueLengthsToBeBetween", {"column": "reply", "min_value": 1}),
        ("ExpectColumnValuesToBeInSet", {"column": "reply_speaker", "value_set": persona_names}),
        ("ExpectColumnValuesToBeInSet", {"column": "split", "value_set": ["train", "validation"]}),
        ("ExpectColumnValuesToBeInSet", {"column": "splits_of_session", "value_set": [1]}),
        ("ExpectColumnValuesToNotMatchRegexList", {"column": "reply", "regex_list": list(leftover_pii)}),
        (
            "ExpectColumnValuesToNotMatchRegexList",
            {"column": "context_text", "regex_list": list(leftover_pii)},
        ),
    ]
