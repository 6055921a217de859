"""Prefect artifacts: what an operator sees for each run in the UI (rendered by tasks/runs/markdown.py).

Keys group an artifact's history across runs (the UI's Artifacts page); they may hold only
lowercase letters, digits and dashes, so owner and persona names are folded into a safe key.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.datasets.build import DatasetResult
from tasks.indexing.indexer import IndexSummary
from tasks.ingest.uploads import IngestSummary
from tasks.runs import markdown as reports


def artifact_key(*parts: str) -> str:
    """A valid, stable artifact key for names in any script."""
    text = "-".join(parts)
    folded = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{folded[:60].strip('-')}-{digest}"


@task(name="report-ingest")
def report_ingest(owner_id: str, summaries: list[IngestSummary]) -> None:
    """Ingest summary table: format, counts by kind, speakers, quarantined lines."""
    create_table_artifact(
        reports.ingest_rows(summaries),
        key=artifact_key("ingest", owner_id),
        description=f"Ingested uploads of {owner_id}",
    )


@task(name="report-dataset")
def report_dataset(result: DatasetResult) -> None:
    """The data-quality report of the dataset version."""
    create_markdown_artifact(
        reports.dataset_markdown(result),
        key=artifact_key("quality", result.owner_id, result.persona_id),
        description=f"Data quality of {result.owner_id}/{result.persona_id} v{result.version}",
    )


@task(name="report-index")
def report_index(summaries: list[IndexSummary], label: str) -> None:
    """Indexing stats per owner."""
    create_table_artifact(
        reports.index_rows(summaries), key=artifact_key("index", label), description="Indexing"
    )


@task(name="report-markdown")
def report_markdown(markdown: str, key: str, description: str) -> None:
    """A closing summary of a run."""
    create_markdown_artifact(markdown, key=key, description=description)


@task(name="report-table")
def report_table(rows: list[dict[str, Any]], key: str, description: str) -> None:
    """A table of per-item outcomes (e.g. personas refreshed by recycling)."""
    create_table_artifact(rows, key=key, description=description)


@task(name="report-training")
def report_training(manifest: dict[str, Any]) -> None:
    """The training curve (picture + table) and the model card of a published version."""
    owner, persona, kind = manifest["owner_id"], manifest["persona"], manifest["kind"]
    prefix = "voice-" if kind == "voice" else ""  # a persona's text and voice keep separate histories
    create_markdown_artifact(
        reports.training_markdown(manifest),
        key=artifact_key(f"{prefix}curve", owner, persona),
        description=f"Training curve of {owner}/{persona} {kind} v{manifest['version']}",
    )
    if kind == "text":
        create_markdown_artifact(
            reports.conversation_markdown(manifest),
            key=artifact_key("conversation-eval", owner, persona),
            description=f"Does {owner}/{persona} text v{manifest['version']} answer what was said "
            "(beside production)",
        )
    cards = {"text": reports.model_card, "voice": reports.voice_model_card}
    if kind in cards:
        create_markdown_artifact(
            cards[kind](manifest),
            key=artifact_key(f"{prefix}model-card", owner, persona),
            description=f"Model card of {owner}/{persona} {kind} v{manifest['version']}",
        )


def report_published(results: list[dict[str, Any]]) -> None:
    """Report the training of every result that carries a `manifest` (popped: tables stay small).

    Called from a flow with the outcomes of mapped refresh tasks; the reports run as mapped tasks.
    """
    published = [r.pop("manifest") for r in results if r.get("manifest")]
    if published:
        report_training.map(published).result()
