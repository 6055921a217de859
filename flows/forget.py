"""forget: remove a data subject (a persona, or a whole owner) from everything that holds it.

Wiring only: the persona locks (the same ones restore and recycling hold), the source of truth
and everything derived from it (tasks/lifecycle/forget.py, tasks/lifecycle/forget_derived.py),
then Prefect's own history (tasks/lifecycle/prefect_history.py), then the receipt as an artifact
that names nobody.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from infra.settings import Settings
from infra.storage import open_storage
from schemas.names import nfc, slug
from tasks.lifecycle.forget_derived import persona_ids
from tasks.lifecycle.locks import persona_locks
from tasks.lifecycle.prefect_tasks import forget_prefect_history, forget_subject
from tasks.runs.artifacts import artifact_key, report_markdown
from tasks.runs.run_logs import readable_failure_logs


@flow(name="forget", log_prints=True)
def forget(
    owner_id: str, persona: str | None = None, aliases: list[str] | None = None, lake_url: str | None = None
) -> dict[str, Any]:
    """Delete `persona`'s data of `owner_id` (all of the owner's without a persona); a receipt."""
    readable_failure_logs()
    lake = lake_url or Settings().lake_url
    names = sorted({nfc(n) for n in [persona, *(aliases or [])] if n})
    storage = open_storage(lake)
    # Every persona of the owner: forget rebuilds the others without the subject's words, and a
    # refresh of one of them racing it could publish a model still holding them.
    locked = sorted({*persona_ids(storage, owner_id), *([slug(persona)] if persona else [])})
    with persona_locks(owner_id, locked, storage):
        receipt = forget_subject(lake, owner_id, persona, aliases or [])
    markers = [*names, *(slug(n) for n in names)]
    receipt["prefect"] = forget_prefect_history(owner_id, sorted(set(markers)), str(flow_run.get_id() or ""))
    left = receipt["left"]
    lines = [f"# Forgotten: {owner_id} / {receipt['subject']}", "", "## Removed", ""]
    lines += [f"- {k}: {v}" for k, v in {**receipt["source"], **receipt["prefect"]}.items()]
    lines += ["", "## Rebuilt", "", *(f"- {r}" for r in receipt["derived"]["rebuilt"] or ["nothing"])]
    lines += ["", "## Retired", "", *(f"- {r}" for r in receipt["derived"]["retired"] or ["nothing"])]
    lines += ["", "## Owed", "", *(f"- {r}" for r in receipt["derived"]["owed"] or ["nothing"])]
    lines += [
        "",
        "## Left (a scan of every store; all must be 0)",
        "",
        *(f"- {k}: {v}" for k, v in left.items()),
    ]
    report_markdown("\n".join(lines), artifact_key("forget", owner_id, receipt["subject"]), "Forget receipt")
    return receipt
