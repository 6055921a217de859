"""`rememberme parse|ingest|formats|index|search`, `dataset build`, `services up|down|status`.

Heavy modules (pandas, pyarrow, elasticsearch, kiwi, torch) are imported inside the commands that
use them: a one-shot `chat --message` must not pay for what `ingest` needs.
"""

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

import typer

from flows.cli_options import (
    TURNS,
    Aliases,
    BurstGap,
    ContextTurns,
    DateOrder,
    ExportFormat,
    Json,
    Lake,
    MinPairs,
    NoVectors,
    Owner,
    Persona,
    PersonaFilter,
    Seed,
    SessionGap,
    Timezone,
    Validation,
    settings,
)
from flows.cli_output import emit_json, progress, table
from infra.settings import Settings
from tasks.datasets.options import MIN_PAIRS

if TYPE_CHECKING:
    import pyarrow as pa

    from parsers.kakao.archive import ArchiveLimits
    from tasks.ingest.uploads import IngestSummary

PROG = "rememberme"

Export = Annotated[Path, typer.Argument(metavar="EXPORT", help="a KakaoTalk export: .txt, .csv or .zip")]

dataset_app = typer.Typer(help="versioned training datasets for a persona", no_args_is_help=True)
services_app = typer.Typer(
    help="local stand-ins for cloud services (Elasticsearch API, GCS)", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.command("parse", help="print the canonical messages of a KakaoTalk export")(cmd_parse)
    app.command("ingest", help="store an export in the lake as canonical Message Parquet")(cmd_ingest)
    app.command("formats", help="list the supported export variants")(cmd_formats)
    app.add_typer(dataset_app, name="dataset")
    app.add_typer(services_app, name="services")
    app.command("index", help="index an owner's lake messages into Elasticsearch (idempotent)")(cmd_index)
    app.command("search", help="full-text search in one owner's messages")(cmd_search)


def _forced(name: str) -> str | None:
    return None if name == "auto" else name


def _limits(s: Settings) -> "ArchiveLimits":
    from parsers.kakao.archive import ArchiveLimits

    return ArchiveLimits(s.max_archive_bytes, s.max_archive_ratio, s.max_archive_members)


def cmd_parse(
    export: Export,
    export_format: ExportFormat = "auto",
    jsonl: Annotated[bool, typer.Option("--jsonl", help="one JSON object per message")] = False,
    tz: Timezone = None,
) -> None:
    """Print messages (human view, or JSON lines) without touching the lake."""
    from parsers.base import ParseContext
    from parsers.exports import inspect_export, iter_batches
    from tasks.ingest.uploads import open_upload

    s = settings(tz=tz)
    with open_upload(export, str(export), _limits(s)) as upload:
        for chat in upload.chats:
            info = inspect_export(chat.path, _forced(export_format), chat.display_name)
            ctx = ParseContext(
                "local",
                upload.upload_id,
                info.display_name,
                info.sha256,
                info.conversation_id,
                s.kakao_timezone,
            )
            with progress(info.size) as on_progress:
                for batch in iter_batches(info, ctx, on_progress, s.parse_chunk_bytes):
                    _print_messages(batch.messages, s.kakao_timezone, jsonl, sys.stdout)
                    for row in batch.quarantine.to_pylist():
                        print(
                            f"{PROG}: quarantined {row['source_file']}:{row['line_no']}: {row['reason']}",
                            file=sys.stderr,
                        )


def _print_messages(messages: "pa.Table", timezone: str, as_json: bool, out: Any) -> None:
    import json

    import pyarrow as pa

    local = messages.column("ts").cast(pa.timestamp("us", tz=timezone))
    rows = messages.drop_columns(["ts"]).to_pylist()
    for row, ts in zip(rows, local.to_pylist(), strict=True):
        if as_json:
            row = {"ts": ts.isoformat(), **row}
            if row.get("attachment") is None:
                row.pop("attachment", None)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            who = row["speaker"] if row["speaker"] is not None else "*"
            text = row["text"].replace("\n", "\n    ")
            out.write(f"{ts:%Y-%m-%d %H:%M} [{row['kind']}] {who}: {text}\n")


def cmd_ingest(
    export: Export,
    owner: Owner,
    lake: Lake = None,
    export_format: ExportFormat = "auto",
    date_order: DateOrder = None,
    tz: Timezone = None,
    as_json: Json = False,
) -> None:
    """Ingest one export for one owner and print a summary."""
    from infra.storage import open_storage
    from tasks.ingest.uploads import ingest_export

    s = settings(lake=lake, tz=tz)
    storage = open_storage(s.lake_url)
    size = export.stat().st_size if export.is_file() else 0
    with progress(size) as on_progress:
        summary = ingest_export(
            export, owner, storage, s, _forced(export_format), on_progress, str(export), date_order
        )
    if as_json:
        emit_json(summary.to_dict())
    else:
        _print_summary(summary)


def _print_summary(s: "IngestSummary") -> None:
    print(f"ingested {s.file} for owner {s.owner_id} (upload {s.upload_id})")
    for f in s.files:
        room = f" room {f.room!r}" if f.room else ""
        print(f"  {f.file}: format {f.format} ({f.source}, {f.encoding}){room}")
        print(f"    messages {f.messages}, quarantined {f.quarantined}, {f.first_ts} .. {f.last_ts}")
        print("    by kind:    " + ", ".join(f"{k} {v}" for k, v in f.by_kind.items()))
        print("    by speaker: " + ", ".join(f"{k} {v}" for k, v in f.by_speaker.items()))
        print(f"    messages:   {f.messages_uri}")
        for note in f.notes:
            print(f"    note:       {note}")
    if s.media:
        print(f"  media files: {s.media}")
    print(f"  quarantined: {s.quarantined} -> {s.quarantine_uri}")
    print(f"  raw:         {s.raw_uri}")


def cmd_formats(as_json: Json = False) -> None:
    """List the variants the parser detects."""
    from parsers.kakao.formats import FORMATS_BY_NAME

    rows = [(name, fmt.source, fmt.language) for name, fmt in FORMATS_BY_NAME.items()]
    rows.append(("mac_csv", "kakao_mac_csv", "any"))
    rows.append(("whatsapp", "whatsapp_txt", "en, de, es, ko, ... (Android and iOS)"))
    rows.append(("sms", "android_sms_xml", "any (SMS Backup & Restore XML, SMS and MMS)"))
    rows.append(("telegram", "telegram_json", "any (Telegram Desktop result.json: one chat or all)"))
    rows.append(("telegram", "telegram_html", "any (Telegram Desktop messages.html, messages2.html, ...)"))
    rows.append(("messenger", "messenger_json", "any (Messenger, Instagram message_*.json; encrypted chats)"))
    rows.append(("line", "line_txt", "en, ja, ko (PC and mobile)"))
    if as_json:
        emit_json([{"name": n, "source": s, "language": lang} for n, s, lang in rows])
        return
    table(("name", "source", "language"), rows, [f"{n:14} {s:18} {lang}" for n, s, lang in rows])


@dataset_app.command("build", help="clean, redact, gate and version a persona's dataset")
def cmd_dataset_build(
    owner: Owner,
    persona: Persona,
    alias: Aliases = None,
    lake: Lake = None,
    burst_gap: BurstGap = TURNS.burst_gap_s,
    session_gap: SessionGap = TURNS.session_gap_s,
    context_turns: ContextTurns = TURNS.context_turns,
    validation: Validation = TURNS.validation_fraction,
    seed: Seed = TURNS.seed,
    min_pairs: MinPairs = MIN_PAIRS,
    as_json: Json = False,
) -> None:
    """Build (or find unchanged) the persona's newest dataset version."""
    from infra.storage import open_storage
    from schemas.names import slug
    from tasks.datasets.build import DatasetOptions, build_dataset
    from tasks.datasets.options import TurnOptions
    from tasks.lifecycle.locks import persona_locks

    storage = open_storage(settings(lake=lake).lake_url)
    turns = TurnOptions(burst_gap, session_gap, context_turns, validation, seed)
    options = DatasetOptions(turns=turns, min_pairs=min_pairs)
    with persona_locks(owner, [slug(persona)], storage):  # not during its restore or forget
        result = build_dataset(storage, owner, persona, alias or [], options)
    if as_json:
        emit_json(result.to_dict())
        return
    verb = "built" if result.created else "unchanged, kept"
    manifest = result.manifest
    counts = manifest["counts"]
    print(f"dataset {verb}: {result.prefix} (v{result.version}, hash {result.content_hash[:16]})")
    print(
        f"  messages {counts['messages_in']} -> clean {counts['messages_clean']} "
        f"(persona {counts['persona_messages']}), turns {counts['turns']}"
    )
    print(
        f"  pairs: train {counts['pairs_train']} ({counts['sessions_train']} sessions), "
        f"validation {counts['pairs_validation']} ({counts['sessions_validation']} sessions)"
    )
    for step in manifest["steps"]:
        print(f"  {step['step']:17} {step['rows_in']:>8} -> {step['rows_out']:>8}  changed {step['changed']}")
    if manifest["redactions"]:
        print("  redacted: " + ", ".join(f"{k} {v}" for k, v in sorted(manifest["redactions"].items())))
    gaps = manifest["gaps"]
    if gaps.get("count"):
        buckets = ", ".join(f"{k} {v}" for k, v in gaps["buckets"].items())
        print(f"  gaps between messages: p50 {gaps['p50_s']:.0f}s, p90 {gaps['p90_s']:.0f}s ({buckets})")
    print(
        "  quality: " + ", ".join(f"{r.name} {'passed' if r.success else 'FAILED'}" for r in result.reports)
    )


def cmd_index(
    owner: Owner,
    lake: Lake = None,
    no_vectors: NoVectors = False,
    switch_embedder: Annotated[
        bool,
        typer.Option(
            "--switch-embedder",
            help="first move every index to REMEMBERME_EMBEDDER_MODEL's vectors (chat memory rebuilt "
            "from the lake, every production persona recalibrated for it; other owners' messages keep "
            "their text, their vectors come back when re-indexed)",
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Index every message of an owner (re-running never duplicates: _id = message_id)."""
    from infra import services
    from infra.search import connect
    from infra.storage import open_storage
    from infra.text_features import default_embedder
    from schemas.names import validate_owner
    from tasks.indexing import indexer
    from tasks.ingest.lake import load_message_table
    from tasks.lifecycle.forget_derived import persona_ids
    from tasks.lifecycle.locks import persona_locks

    s = settings(lake=lake)
    client = connect(services.elasticsearch_url(s))
    storage = open_storage(s.lake_url)
    moved: dict[str, str] = {}
    personas: dict[str, list[dict[str, Any]]] = {}
    if switch_embedder:
        from tasks.training.recalibration import recalibrate_production

        # Personas first (no search needed): once the indices move, each answers at once.
        personas = recalibrate_production(storage, default_embedder())
        moved = indexer.switch_embedder(storage, client, default_embedder())
    # The owner's persona locks, as forget holds them: never a read of rows a running forget is
    # deleting (tombstones are checked too, before and after the write, for speakers with no persona).
    owner = validate_owner(owner)
    embedder = None if no_vectors else default_embedder()
    with persona_locks(owner, persona_ids(storage, owner), storage):
        summary = indexer.index_table(storage, client, owner, load_message_table(storage, owner), embedder)
    if as_json:
        emit_json({**summary.to_dict(), **({"switched": moved, **personas} if moved else {})})
        return
    for alias_, index in moved.items():
        print(f"{alias_} serves {index} ({default_embedder().name})")
    if moved:
        print(f"recalibrated {len(personas['recalibrated'])} production personas for it (no retraining)")
        for row in personas["skipped"]:
            print(f"  skipped {row['owner_id']}/{row['persona_id']} v{row['version']}: {row['reason']}")
    failed = len(summary.failed)
    print(f"indexed {summary.indexed} messages of {owner} into {summary.alias} ({failed} failed)")
    for failure in summary.failed[:20]:
        print(f"  failed {failure['message_id']}: {failure['reason']}")
    if summary.quarantine_uri:
        print(f"  quarantined: {failed} -> {summary.quarantine_uri}")


def cmd_search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="what to look for (plain text)")],
    owner: Owner,
    persona: PersonaFilter = None,
    alias: Aliases = None,
    size: Annotated[int, typer.Option("--size", metavar="N", help="how many hits")] = 10,
    mode: Annotated[
        Literal["hybrid", "text", "semantic"],
        typer.Option("--mode", help="hybrid: BM25 + kNN fused; text: BM25; semantic: kNN"),
    ] = "hybrid",
    as_json: Json = False,
) -> None:
    """Print the best matching messages of one owner (optionally one persona's)."""
    from infra import services
    from infra.indices import check_embedder
    from infra.search import connect, hybrid_search, search_messages, semantic_search
    from infra.text_features import default_embedder
    from schemas.search import MESSAGES_ALIAS

    s = settings()
    client = connect(services.elasticsearch_url(s))
    speakers = [persona, *(alias or [])] if persona else None
    if mode != "text":
        check_embedder(client, MESSAGES_ALIAS, default_embedder())
    if mode == "text":
        hits = search_messages(client, MESSAGES_ALIAS, owner, query, speakers, size)
    elif mode == "semantic":
        hits = semantic_search(client, MESSAGES_ALIAS, owner, query, default_embedder(), speakers, size)
    else:
        hits = hybrid_search(client, MESSAGES_ALIAS, owner, query, default_embedder(), speakers, size)
    if as_json:
        emit_json({"query": query, "owner_id": owner, "hits": hits})
        return
    zone = ZoneInfo(s.kakao_timezone)
    rows = [
        (f"{h['score']:7.3f}", f"{datetime.fromisoformat(h['ts']).astimezone(zone):%Y-%m-%d %H:%M}",
         h["speaker"] or "*", h["text"])
        for h in hits
    ]  # fmt: skip
    table(
        ("score", "when", "who", "text"),
        rows,
        [f"{sc}  {when}  {who}: {text}" for sc, when, who, text in rows],
    )


@services_app.command("up", help="start the local Elasticsearch API (unless REMEMBERME_ES_URL is set)")
def cmd_services_up(
    gcs: Annotated[bool, typer.Option("--gcs", help="also start the GCS emulator")] = False,
    as_json: Json = False,
) -> None:
    """Start what is not running, then report."""
    from infra import services

    s = settings()
    services.elasticsearch_url(s)
    if gcs:
        url = services.local_gcs(s).up()
        print(f"GCS emulator: export STORAGE_EMULATOR_HOST={url}", file=sys.stderr)
    _report(s, as_json)


_IGNORED_GCS = Annotated[
    bool, typer.Option("--gcs", hidden=True, help="accepted for compatibility; no effect")
]


@services_app.command("down", help="stop the local stand-ins (their data stays under the state folder)")
def cmd_services_down(gcs: _IGNORED_GCS = False, as_json: Json = False) -> None:
    """Stop the local servers, then report."""
    from infra import services

    s = settings()
    if not s.es_url:
        services.local_elasticsearch(s).down()
    services.local_gcs(s).down()
    _report(s, as_json)


@services_app.command("status", help="report whether each service answers")
def cmd_services_status(gcs: _IGNORED_GCS = False, as_json: Json = False) -> None:
    """Report only."""
    _report(settings(), as_json)


def _report(s: Settings, as_json: bool) -> None:
    from infra import services

    status = services.statuses(s)
    print(services.as_json(status) if as_json else services.render(status))
