"""The recycling state's failed pieces: counted, retried, parked, dropped (plain functions)."""

from __future__ import annotations

from tasks.ingest.watermarks import RecyclingState
from tasks.runs.retries import MAX_ATTEMPTS, RetryItem, due, settle, work_key


def _failed(work: str, owner: str, persona: str | None = None, parts: list[str] | None = None) -> RetryItem:
    return RetryItem(work, owner, persona, parts or [], error="RuntimeError: boom")


def test_a_failure_is_recorded_then_counted_then_parked() -> None:
    state: dict[str, RetryItem] = {}
    key = work_key("text", "o1", "엄마")
    for n in range(1, MAX_ATTEMPTS + 1):
        state = settle(state, {key}, [_failed("text", "o1", "엄마")], f"2024-03-0{n}")
        assert state[key].attempts == n
        assert state[key].first_failed == "2024-03-01" and state[key].last_failed == f"2024-03-0{n}"
    assert state[key].parked
    assert due(state) == []  # parked: not retried by itself
    assert [i.key for i in due(state, retry_parked=True)] == [key]


def test_success_clears_and_pieces_not_attempted_stay() -> None:
    state = settle({}, set(), [_failed("text", "o1", "엄마"), _failed("voice", "o2", "아빠")], "2024-03-01")
    state = settle(state, {work_key("text", "o1", "엄마")}, [], "2024-03-02")
    assert list(state) == [work_key("voice", "o2", "아빠")]
    assert state[work_key("voice", "o2", "아빠")].attempts == 1  # untouched


def test_index_parts_still_owed_accumulate_across_failures() -> None:
    key = work_key("index", "o1")
    state = settle({}, {key}, [_failed("index", "o1", None, ["p1", "p2"])], "2024-03-01")
    state = settle(state, {key}, [_failed("index", "o1", None, ["p3"])], "2024-03-02")
    assert state[key].parts == ["p1", "p2", "p3"] and state[key].attempts == 2


def test_failed_pieces_survive_the_state_file_and_old_states_read_without_them() -> None:
    state = RecyclingState(failed=settle({}, set(), [_failed("voice-prep", "o1")], "2024-03-01"))
    again = RecyclingState.from_json(state.to_json())
    assert again.failed == state.failed
    assert RecyclingState.from_json(b'{"streams": {}, "routed": {}, "runs": 3}').failed == {}


def test_parked_index_parts_are_kept_until_a_pass_indexes_them() -> None:
    key = work_key("index", "o1")
    parked = {key: RetryItem("index", "o1", None, ["p1"], attempts=MAX_ATTEMPTS)}
    # The owner's new part p2 indexed: p1 was never part of that work, so it is still owed.
    assert settle(parked, [RetryItem("index", "o1", None, ["p2"])], [], "2024-03-05")[key].parts == ["p1"]
    assert settle(parked, {key}, [], "2024-03-05")[key].parts == ["p1"]  # a bare key pays no part
    # A pass that indexed p1 with the new part clears it.
    assert settle(parked, [RetryItem("index", "o1", None, ["p1", "p2"])], [], "2024-03-05") == {}


def test_a_pass_with_new_parts_for_a_parked_owner_indexes_the_owed_parts_too() -> None:
    from datetime import date

    from tasks.ingest.platform import RoutedPart
    from tasks.ingest.recycling import RecyclePlan, RouteResult

    key = work_key("index", "o1")
    state = RecyclingState(failed={key: RetryItem("index", "o1", None, ["p1"], attempts=MAX_ATTEMPTS)})
    plan = RecyclePlan(date(2024, 3, 5), 3, ["chat.jsonl"], [], [], 0, state)
    routed = RouteResult([RoutedPart("o1", "엄마", "consent-1", "p2", 3, ["room"])], {})
    assert plan.work(routed).index == {"o1": ["p1", "p2"]}
