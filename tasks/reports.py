"""What the Prefect UI shows for a run, rendered as plain tables and Markdown (no Prefect here).

Counts only, never message text: artifacts are visible to every operator of the workspace.
"""

from __future__ import annotations

from typing import Any

from tasks.dataset import DatasetResult
from tasks.index import IndexSummary
from tasks.ingest import IngestSummary


def _top(counts: dict[str, int], n: int = 6) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{k} {v}" for k, v in items[:n])
    return shown + (f", +{len(items) - n} more" if len(items) > n else "")


def ingest_rows(summaries: list[IngestSummary]) -> list[dict[str, Any]]:
    """One row per chat file: format, counts by kind and speaker, quarantined lines."""
    rows = []
    for s in summaries:
        for f in s.files:
            rows.append(
                {
                    "upload": s.file,
                    "file": f.file,
                    "format": f.format,
                    "encoding": f.encoding,
                    "messages": f.messages,
                    "quarantined": f.quarantined,
                    "first": f.first_ts or "",
                    "last": f.last_ts or "",
                    "by kind": _top(f.by_kind),
                    "speakers": len(f.by_speaker),
                    "resumed": s.resumed,
                }
            )
    return rows


def dataset_markdown(result: DatasetResult) -> str:
    """The data-quality report of a dataset version: steps, redactions, splits and gates."""
    m = result.manifest
    counts = m["counts"]
    lines = [
        f"# Dataset {result.owner_id}/{result.persona_id} v{result.version}",
        "",
        f"{'New version' if result.created else 'Unchanged input: existing version'} "
        f"(content hash `{result.content_hash[:16]}`).",
        "",
        f"Pairs: train **{counts['pairs_train']}** ({counts['sessions_train']} sessions), "
        f"validation **{counts['pairs_validation']}** ({counts['sessions_validation']} sessions).",
        "",
        "| step | rows in | rows out | changed |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {s['step']} | {s['rows_in']} | {s['rows_out']} | {s['changed']} |" for s in m["steps"]]
    if m.get("redactions"):
        lines += ["", "Redacted: " + ", ".join(f"{k} {v}" for k, v in sorted(m["redactions"].items()))]
    lines += ["", *(r.to_markdown() for r in result.reports)]
    return "\n".join(lines)


def index_rows(summaries: list[IndexSummary]) -> list[dict[str, Any]]:
    """One row per owner indexed."""
    return [
        {
            "owner": s.owner_id,
            "alias": s.alias,
            "indexed": s.indexed,
            "rejected": len(s.failed),
            "quarantine": s.quarantine_uri or "",
        }
        for s in summaries
    ]


def restore_markdown(
    owner_id: str,
    persona: str,
    ingests: list[IngestSummary],
    dataset: DatasetResult,
    index: IndexSummary | None,
    training: str,
) -> str:
    """The closing summary of an instant restore."""
    messages = sum(s.messages for s in ingests)
    quarantined = sum(s.quarantined for s in ingests)
    lines = [
        f"# Instant restore: {owner_id} / {persona}",
        "",
        f"- ingested **{messages}** messages from {len(ingests)} upload(s), {quarantined} lines quarantined",
        f"- dataset `{dataset.prefix}` (v{dataset.version}, {'new' if dataset.created else 'unchanged'})",
        f"- indexed {index.indexed} messages into `{index.alias}`" if index else "- indexing skipped",
        f"- training: {training}",
    ]
    return "\n".join(lines)
