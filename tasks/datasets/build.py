"""Build a versioned training dataset for one persona from an owner's messages in the lake.

load -> clean (named drops) -> redact -> gate(messages) -> turns -> pairs -> gate(pairs) ->
content hash -> `datasets/{owner}/{persona}/v{n}/` (unless the latest version has that hash).
Versions are written through infra/versions.py: the number is reserved first, the files written,
the manifest (with every file's sha256) created last, so two builds racing get two numbers and a
crash leaves no version that readers trust.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from infra.storage import Storage
from infra.version import CODE_VERSION
from infra.versions import VersionedStore
from parsers.errors import InputError
from schemas.names import nfc, slug
from schemas.pairs import AUDIT_SCHEMA, PAIR_SCHEMA
from schemas.quality import message_suite, pair_suite
from tasks.datasets import clean
from tasks.datasets.clean import CleanOptions
from tasks.datasets.options import MIN_PAIRS, TurnOptions
from tasks.datasets.quality import GateReport, QualityGateError, run_gate
from tasks.datasets.turns import build_pairs, build_turns, gap_distribution
from tasks.ingest.lake import load_message_table
from tasks.trust.pii import LEFTOVER_PATTERNS, Pseudonymizer, redact_messages


@dataclass(frozen=True)
class DatasetOptions:
    """Everything that shapes a dataset; part of its content hash."""

    clean: CleanOptions = field(default_factory=CleanOptions)
    turns: TurnOptions = field(default_factory=TurnOptions)
    min_pairs: int = MIN_PAIRS


@dataclass
class DatasetResult:
    """What a build produced (or found unchanged)."""

    owner_id: str
    persona_id: str
    version: int
    created: bool
    content_hash: str
    manifest: dict[str, Any]
    reports: list[GateReport]
    prefix: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the manifest carries the details)."""
        return {
            "owner_id": self.owner_id,
            "persona_id": self.persona_id,
            "version": self.version,
            "created": self.created,
            "content_hash": self.content_hash,
            "prefix": self.prefix,
            "counts": self.manifest["counts"],
            "quality": {r.name: r.success for r in self.reports},
        }


def load_messages(storage: Storage, owner_id: str) -> pd.DataFrame:
    """Every Message row of an owner, from all sources."""
    frame: pd.DataFrame = load_message_table(storage, owner_id).to_pandas()
    return frame


def resolve_persona(
    messages: pd.DataFrame, persona: str, aliases: list[str], owner_id: str
) -> tuple[str, list[str]]:
    """The persona id and its display names; an unknown name lists the speakers found."""
    names = sorted({nfc(persona), *(nfc(a) for a in aliases)})
    speakers = messages["speaker"].dropna()
    if not speakers.isin(names).any():
        counts = speakers.value_counts().head(15)
        found = ", ".join(f"{name} ({n})" for name, n in counts.items())
        raise InputError(
            f"persona {persona!r}", f"matches no speaker of owner {owner_id}; speakers found: {found}"
        )
    return slug(persona), names


def cleaning_steps(options: DatasetOptions, now: datetime) -> list[tuple[str, clean.Step]]:
    """The cleaning steps of a dataset build, in order."""
    return [
        ("reject_bad_rows", lambda df: clean.reject_bad_rows(df, now)),
        ("drop_system", clean.drop_system),
        ("drop_deleted", clean.drop_deleted),
        ("drop_attachments", clean.drop_attachments),
        ("normalize_text", lambda df: clean.normalize_text(df, options.clean)),
        ("drop_empty", clean.drop_empty),
        ("drop_duplicates", clean.drop_duplicates),
        (
            "redact_pii",
            lambda df: redact_messages(df.sort_values(["ts", "message_id"], kind="stable"), Pseudonymizer()),
        ),
    ]


def build_dataset(
    storage: Storage,
    owner_id: str,
    persona: str,
    aliases: list[str] | None = None,
    options: DatasetOptions | None = None,
    now: datetime | None = None,
) -> DatasetResult:
    """Clean, gate and version one persona's dataset; unchanged input gives the same version back."""
    options = options or DatasetOptions()
    now = now or datetime.now(UTC)
    raw = load_messages(storage, owner_id)
    persona_id, names = resolve_persona(raw, persona, aliases or [], owner_id)

    messages, audit, step_counts = clean.run_steps(raw, cleaning_steps(options, now))
    messages["is_persona"] = messages["speaker"].isin(names)

    earliest = int(clean.EARLIEST.timestamp())
    latest = int((now + timedelta(days=1)).timestamp())
    message_view = messages.assign(
        ts_s=(messages["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    )
    reports = [run_gate("messages", message_view, message_suite(LEFTOVER_PATTERNS, earliest, latest))]

    turns = build_turns(messages, options.turns)
    pairs = build_pairs(turns, owner_id, persona_id, options.turns)
    reports.append(
        run_gate("pairs", _pair_view(pairs), pair_suite(LEFTOVER_PATTERNS, names, options.min_pairs))
    )

    train = pairs.filter(pc.equal(pairs.column("split"), "train")).sort_by("pair_id")
    validation = pairs.filter(pc.equal(pairs.column("split"), "validation")).sort_by("pair_id")
    audit_table = pa.Table.from_pandas(audit, schema=AUDIT_SCHEMA, preserve_index=False).sort_by(
        [("step", "ascending"), ("message_id", "ascending")]
    )
    parameters = _jsonable(asdict(options))
    content_hash = _content_hash(train, validation, parameters)
    base = f"datasets/{owner_id}/{persona_id}"
    if not all(r.success for r in reports):
        where = _store_rejected(storage, f"{base}/rejected/{content_hash[:16]}", reports)
        failed = next(r for r in reports if not r.success)
        raise QualityGateError(failed, _in_user_terms(failed, persona, options.min_pairs, where))

    store = VersionedStore(storage, base)
    latest_manifest = store.latest()
    if latest_manifest is not None and latest_manifest["content_hash"] == content_hash:
        version = int(latest_manifest["version"])
        return DatasetResult(
            owner_id, persona_id, version, False, content_hash, latest_manifest, reports, f"{base}/v{version}"
        )

    counts = {
        "messages_in": len(raw),
        "messages_clean": len(messages),
        "persona_messages": int(messages["is_persona"].sum()),
        "turns": len(turns),
        "pairs_train": train.num_rows,
        "pairs_validation": validation.num_rows,
        "sessions_train": len(set(train.column("session_id").to_pylist())),
        "sessions_validation": len(set(validation.column("session_id").to_pylist())),
    }
    redactions: dict[str, int] = {}
    for reason in audit.loc[audit["step"] == "redact_pii", "reason"]:
        for part in reason.removeprefix("redacted ").split(", "):
            kind, _, n = part.partition(" x")
            redactions[kind] = redactions.get(kind, 0) + int(n)
    files = {
        "train.parquet": _parquet(train),
        "validation.parquet": _parquet(validation),
        "audit.parquet": _parquet(audit_table),
        "quality.json": json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=1).encode(),
        "quality.md": "\n".join(r.to_markdown() for r in reports).encode(),
    }
    manifest = store.write(
        files,
        {
            "kind": "dataset",
            "owner_id": owner_id,
            "persona_id": persona_id,
            "persona_names": names,
            "created_at": now.isoformat(),
            "code_version": CODE_VERSION,
            "content_hash": content_hash,
            "parameters": parameters,
            "counts": counts,
            "steps": step_counts,
            "redactions": redactions,
            "gaps": gap_distribution(messages),
            "source": _source_range(raw),
            # What it came from, for forget: the message parts read and the uploads behind them.
            "lineage": _lineage(storage, owner_id),
        },
    )
    version = int(manifest["version"])
    return DatasetResult(
        owner_id, persona_id, version, True, content_hash, manifest, reports, f"{base}/v{version}"
    )


def _pair_view(pairs: pa.Table) -> pd.DataFrame:
    frame: pd.DataFrame = pairs.select(
        ["pair_id", "split", "reply", "reply_speaker", "session_id"]
    ).to_pandas()
    contexts = pairs.column("context").to_pylist()
    frame["context_turns"] = [len(c) for c in contexts]
    frame["context_text"] = ["\n".join(turn["text"] for turn in c) for c in contexts]
    frame["splits_of_session"] = frame.groupby("session_id")["split"].transform("nunique")
    return frame


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _content_hash(train: pa.Table, validation: pa.Table, parameters: dict[str, Any]) -> str:
    """Hash of the rows (Arrow IPC of sorted tables) and parameters: independent of Parquet bytes."""
    digest = hashlib.sha256()
    for table in (train, validation):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, PAIR_SCHEMA) as writer:
            writer.write_table(table.cast(PAIR_SCHEMA))
        digest.update(sink.getvalue().to_pybytes())
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    return digest.hexdigest()


def _store_rejected(storage: Storage, prefix: str, reports: list[GateReport]) -> str:
    """Keep the full verdict for the operator; returns where it is."""
    with storage.open_write(f"{prefix}/quality.json") as handle:
        handle.write(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=1).encode())
    with storage.open_write(f"{prefix}/quality.md") as handle:
        handle.write("\n".join(r.to_markdown() for r in reports).encode())
    return storage.uri(f"{prefix}/quality.md")


def _in_user_terms(report: GateReport, persona: str, min_pairs: int, where: str) -> str:
    """What a family member can act on; the gate's internals stay in the stored report."""
    failed = [e for e in report.expectations if not e.success]
    if report.name == "pairs" and [e.expectation for e in failed] == ["expect_table_row_count_to_be_between"]:
        return (
            f"{persona} has {report.rows} reply pairs in this data; a persona needs at least {min_pairs} "
            "(add more conversations with them, or use --min-pairs to override)"
        )
    checks = ", ".join(e.describe() for e in failed)
    return (
        f"the {report.name} of {persona} failed {len(failed)} quality check(s) ({checks}); "
        f"nothing was published; the full report is at {where}"
    )


def _lineage(storage: Storage, owner_id: str) -> dict[str, Any]:
    parts = sorted(k for k in storage.list(f"messages/owner={owner_id}/") if k.endswith(".parquet"))
    uploads = sorted(
        key.rsplit("/", 2)[1] for key in storage.list(f"raw/{owner_id}/") if key.endswith("/_ingest.json")
    )
    return {"message_parts": parts, "uploads": uploads}


def _source_range(raw: pd.DataFrame) -> dict[str, Any]:
    ids = raw["message_id"]
    return {
        "messages": len(raw),
        "first_message_id": ids.min(),
        "last_message_id": ids.max(),
        "first_ts": raw["ts"].min().isoformat(),
        "last_ts": raw["ts"].max().isoformat(),
        "files": sorted(ids.str.split("-", n=1).str[0].unique().tolist()),
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
