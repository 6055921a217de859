"""Forget reaches Prefect's memory of the subject, and no one else's: exact ids, never substrings."""

from __future__ import annotations

import pytest

from tasks.lifecycle.prefect_history import Mentions


def test_the_owner_id_names_the_subject_only_as_a_whole_token() -> None:
    subject = Mentions("a")
    assert subject('{"owner_id": "a"}') and subject("datasets/a/v1") and subject("owner a: 3 messages")
    for other in ('{"owner_id": "demo"}', "bar", "ingest a-b", "x a.b", "a_1"):
        assert not subject(other), other  # before: "a" in "demo" was enough to delete demo's history
    persona = Mentions("a", ("엄마",))
    assert persona("a 엄마") and not persona("demo 엄마") and not persona("a 아빠")
    assert persona.run({"owner_id": "a", "persona": "엄마"}) and not persona.run(
        {"owner_id": "a", "persona": "아빠"}
    )
    assert not Mentions("a").run({"owner_id": "ab"}) and not Mentions("a").run({"lake_url": "file:///a"})


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_api")
def test_forgetting_owner_a_leaves_other_owners_runs_and_edits_shared_ones() -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client

    from tasks.lifecycle.prefect_history import forget_history

    @flow(name="history-probe")
    def probe(owner_id: str, persona: str) -> str:
        return f"{owner_id}/{persona}"

    @flow(name="history-probe-many")
    def probe_many(owners: list[str], voices: list[list[str]]) -> int:
        return len(owners) + len(voices)

    ids = {}
    for owner in ("a", "demo", "abc"):
        ids[owner] = probe(owner, "엄마", return_state=True).state_details.flow_run_id
    shared = probe_many(
        ["a", "demo"], [["a", "엄마"], ["demo", "엄마"]], return_state=True
    ).state_details.flow_run_id
    assert shared is not None
    receipt = forget_history(Mentions("a"))
    assert receipt.flow_runs == 1 and receipt.flow_runs_edited == 1
    with get_client(sync_client=True) as client:
        left = {r.id for r in client.read_flow_runs(limit=200)}
        assert ids["a"] not in left and {ids["demo"], ids["abc"]} <= left
        params = client.read_flow_run(shared).parameters
    assert params == {
        "owners": ["<forgotten>", "demo"],
        "voices": [["<forgotten>", "<forgotten>"], ["demo", "엄마"]],
    }
