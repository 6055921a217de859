"""forget: remove a data subject (a persona, or a whole owner) from lake, index and registry."""

from __future__ import annotations

from typing import Any

from prefect import flow

from infra.settings import Settings
from tasks.artifacts import artifact_key, report_markdown
from tasks.run_logs import readable_failure_logs
from tasks.steps import forget_subject


@flow(name="forget", log_prints=True)
def forget(
    owner_id: str, persona: str | None = None, aliases: list[str] | None = None, lake_url: str | None = None
) -> dict[str, Any]:
    """Delete `persona`'s data of `owner_id` (all of the owner's without a persona); tombstone first."""
    readable_failure_logs()
    lake = lake_url or Settings().lake_url
    summary = forget_subject(lake, owner_id, persona, aliases or [])
    lines = [f"# Forgotten: {owner_id} / {persona or 'everything'}", ""]
    lines += [f"- {k}: {v}" for k, v in summary.items()]
    report_markdown("\n".join(lines), artifact_key("forget", owner_id, persona or "all"), "Forget")
    return summary
