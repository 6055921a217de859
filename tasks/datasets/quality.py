"""Run the quality gates (great-expectations 1.x, ephemeral context) and render their report."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from infra.errors import TerminalError
from schemas.quality import ExpectationSpec

#: Result fields safe to keep: counts and observed values, never the offending values (PII).
_SAFE_RESULT_KEYS = (
    "observed_value",
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "missing_count",
)


class QualityGateError(TerminalError):
    """A gate failed; `report` keeps the whole verdict for the operator.

    The message says why in the user's terms where the caller knows them, else names every failed
    expectation and its counts.
    """

    def __init__(self, report: GateReport, message: str | None = None) -> None:
        failed = "; ".join(e.describe() for e in report.expectations if not e.success)
        super().__init__(message or f"quality gate '{report.name}' failed on {report.rows} rows: {failed}")
        self.report = report


@dataclass
class ExpectationOutcome:
    """One expectation's verdict, without any row values."""

    expectation: str
    column: str | None
    success: bool
    result: dict[str, Any]

    def describe(self) -> str:
        """One phrase: which expectation on which column, with counts."""
        where = f"({self.column})" if self.column else ""
        counts = ", ".join(
            f"{k}={v}" for k, v in self.result.items() if k in ("unexpected_count", "observed_value")
        )
        return f"{self.expectation}{where} {counts}".strip()


@dataclass
class GateReport:
    """All outcomes of one suite on one table."""

    name: str
    rows: int
    success: bool
    expectations: list[ExpectationOutcome] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def to_markdown(self) -> str:
        """A readable table for the Prefect artifact and the dataset folder."""
        status = "passed" if self.success else "FAILED"
        lines = [
            f"### Quality gate `{self.name}`: {status} ({self.rows} rows)",
            "",
            "| expectation | column | result | details |",
            "|---|---|---|---|",
        ]
        for e in self.expectations:
            details = ", ".join(f"{k}: {v}" for k, v in e.result.items())
            lines.append(
                f"| {e.expectation} | {e.column or ''} | {'ok' if e.success else 'FAILED'} | {details} |"
            )
        return "\n".join(lines) + "\n"


_LOCAL = threading.local()


def _context() -> Any:
    # One ephemeral context per thread: Prefect runs mapped tasks on threads, and a GX context
    # is not safe to add data sources and suites to from several threads at once.
    context = getattr(_LOCAL, "context", None)
    if context is None:
        context = _LOCAL.context = _new_context()
    return context


def _new_context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Its INFO lines (temporary docs folders) would flood every run's log in the Prefect UI.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # GX draws progress bars on stderr by default; a pipeline's logs are not a terminal.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def run_gate(name: str, frame: pd.DataFrame, specs: list[ExpectationSpec]) -> GateReport:
    """Validate `frame` against `specs`; the report holds counts only."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = _context()
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    source = context.data_sources.add_pandas(f"src-{tag}")
    batch = source.add_dataframe_asset(f"asset-{tag}").add_batch_definition_whole_dataframe("all")
    suite = gx.ExpectationSuite(name=f"suite-{tag}")
    for class_name, kwargs in specs:
        suite.add_expectation(getattr(gxe, class_name)(**kwargs))
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"vd-{tag}", data=batch, suite=suite)
    )
    try:
        result = definition.run(
            batch_parameters={"dataframe": frame}, result_format={"result_format": "SUMMARY"}
        )
    finally:
        context.validation_definitions.delete(definition.name)
        context.suites.delete(suite.name)
        context.data_sources.delete(source.name)
    outcomes = [
        ExpectationOutcome(
            expectation=r.expectation_config.type,
            column=r.expectation_config.kwargs.get("column"),
            success=bool(r.success),
            result={k: _plain(r.result[k]) for k in _SAFE_RESULT_KEYS if k in (r.result or {})},
        )
        for r in result.results
    ]
    return GateReport(name, len(frame), bool(result.success), outcomes)


def _plain(value: Any) -> Any:
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)
