"""`rememberme restore|recycle|forget|landing|serve|server`: the orchestrated commands.

Prefect is imported only here, inside the commands, after `configure_prefect` chose its home:
the plain commands (parse, ingest, ...) start without it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from infra import services
from infra.prefect_env import configure_prefect
from infra.settings import Settings
from infra.storage import open_storage
from parsers.errors import InputError
from parsers.kakao.export import check_readable, inspect_export


def add_commands(sub: Any) -> None:
    """Register the orchestrated commands on the CLI's subparsers."""
    lake_help = "lake URL (default: REMEMBERME_LAKE_URL or file://./data)"

    restore = sub.add_parser("restore", help="instant restore: export(s) -> dataset -> index (a flow run)")
    restore.add_argument("exports", nargs="+", help="KakaoTalk export(s): local paths or lake keys")
    restore.add_argument("--owner", required=True, help="the platform user who owns the data")
    restore.add_argument("--persona", required=True, help="the person to restore: their display name")
    restore.add_argument("--alias", action="append", default=[], help="another display name of the persona")
    restore.add_argument("--lake", default=None, help=lake_help)
    restore.add_argument("--no-index", action="store_true", help="stop after the dataset (no Elasticsearch)")
    restore.add_argument("--no-vectors", action="store_true", help="index without sentence vectors (faster)")
    restore.add_argument("--no-train", action="store_true", help="stop before training a model")
    restore.add_argument(
        "--audio",
        action="append",
        default=[],
        help="an audio file of the persona's voice (repeatable; a .txt beside it is its transcript)",
    )
    restore.add_argument("--steps", type=int, default=None, help="training steps (default: settings)")
    restore.add_argument(
        "--min-pairs", type=int, default=None, help="fewest reply pairs a persona needs (default 20)"
    )
    restore.add_argument("--json", action="store_true", help="print the result as one JSON object")

    recycle = sub.add_parser("recycle", help="one data-recycling pass over the platform landing area")
    recycle.add_argument("--as-of", type=date.fromisoformat, default=None, help="the pass's day (YYYY-MM-DD)")
    recycle.add_argument("--lake", default=None, help=lake_help)
    recycle.add_argument("--no-index", action="store_true", help="skip indexing")
    recycle.add_argument("--no-vectors", action="store_true", help="index without sentence vectors")
    recycle.add_argument(
        "--retry-failed",
        action="store_true",
        help="also retry pieces parked after failing 3 passes in a row (after fixing their cause)",
    )
    recycle.add_argument("--json", action="store_true", help="print the result as one JSON object")

    forget = sub.add_parser("forget", help="delete a persona's (or an owner's) data everywhere")
    forget.add_argument("--owner", required=True, help="the platform user who owns the data")
    forget.add_argument("--persona", default=None, help="only this persona (default: the whole owner)")
    forget.add_argument("--alias", action="append", default=[], help="another display name of the persona")
    forget.add_argument("--lake", default=None, help=lake_help)
    forget.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    forget.add_argument("--json", action="store_true", help="print the result as one JSON object")

    landing = sub.add_parser("landing", help="generate realistic platform landing data (demo, tests)")
    landing.add_argument("--rooms", type=int, default=10, help="rooms (one remembered person each)")
    landing.add_argument("--days", type=int, default=30, help="days of data")
    landing.add_argument("--start", type=date.fromisoformat, default=date(2024, 3, 1), help="first day")
    landing.add_argument("--events-per-day", type=int, default=200, help="chat events per day")
    landing.add_argument("--seed", type=int, default=1, help="generator seed")
    landing.add_argument("--lake", default=None, help=lake_help)

    base = sub.add_parser(
        "train-base", help="pretrain the shared base on the lake's conversations, or import a local LM"
    )
    base.add_argument(
        "--steps", type=int, default=None, help="training steps (default: 2x the persona steps)"
    )
    base.add_argument(
        "--from-hf",
        metavar="DIR",
        default=None,
        help="import a local Hugging Face causal-LM directory (config.json, weights, tokenizer.json) "
        "as the base instead of pretraining one; nothing downloads",
    )
    base.add_argument("--lake", default=None, help=lake_help)
    base.add_argument("--json", action="store_true", help="print the result as one JSON object")

    voice_base = sub.add_parser(
        "train-voice-base", help="pretrain the multi-speaker voice base, or import one from a folder"
    )
    voice_base.add_argument("--steps", type=int, default=None, help="training steps (default 600)")
    voice_base.add_argument(
        "--from",
        dest="from_dir",
        metavar="DIR",
        default=None,
        help="import a voice base folder (config.json + weights.pt or model.safetensors) instead",
    )
    voice_base.add_argument("--lake", default=None, help=lake_help)
    voice_base.add_argument("--json", action="store_true", help="print the result as one JSON object")

    sub.add_parser("serve", help="register the deployments and run their flow runs (Ctrl-C stops)")
    sub.add_parser("server", help="start the Prefect server and UI locally (SQLite, 127.0.0.1)")


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """Run the instant-restore flow; bad exports are refused before any run starts."""
    storage = open_storage(settings.lake_url)
    for source in args.exports:
        path = Path(source)
        if path.exists() or not storage.exists(source):
            check_readable(path, source)
            if path.suffix.lower() != ".zip":
                inspect_export(path, None, source)
    for audio in args.audio:  # refused before any run starts, like a bad export
        if not Path(audio).is_file() and not storage.exists(audio):
            raise InputError(audio, "no such audio file")
    if not args.no_index:  # a search server that cannot be used stops us now, not after training
        services.elasticsearch_url(settings)
    configure_prefect(settings)
    from flows.restore import instant_restore

    result = instant_restore(
        args.owner,
        args.persona,
        [str(Path(s).resolve()) if Path(s).exists() else s for s in args.exports],
        aliases=args.alias,
        lake_url=settings.lake_url,
        index=not args.no_index,
        vectors=False if args.no_vectors else None,
        train=not args.no_train,
        train_steps=args.steps,
        min_pairs=args.min_pairs,
        audio=[str(Path(a).resolve()) if Path(a).exists() else a for a in args.audio],
    )
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        counts = result["dataset"]["counts"]
        print(f"restored {args.persona} for {args.owner}: {result['messages']} messages")
        print(
            f"  dataset {result['dataset']['prefix']}: train {counts['pairs_train']} pairs, "
            f"validation {counts['pairs_validation']}"
        )
        if result["indexed"] is not None:
            print(f"  indexed {result['indexed']} messages")
        model = result["model"]
        if model:
            state = "production" if model["production"] else "candidate"
            print(f"  model v{model['version']} ({state}): validation loss {model['val_loss']:.3f}, "
                  f"discrimination {model['discrimination_accuracy']:.0%}")  # fmt: skip
        if result["reply"]:
            print(f"  > {result['reply']['message']}")
            print(f"  {args.persona}: {result['reply']['reply']}")
        voice = result.get("voice") or {}
        if voice.get("dataset"):
            d = voice["dataset"]
            model = f", voice model v{voice['model_version']}" if voice.get("model_version") else ""
            print(
                f"  voice dataset v{d['version']}: {d['segments']} utterances, {d['minutes']:.1f} min{model}"
            )
    return 0


def cmd_recycle(args: argparse.Namespace, settings: Settings) -> int:
    """Run one data-recycling pass."""
    configure_prefect(settings)
    from flows.recycle import data_recycling

    result = data_recycling(
        as_of=args.as_of,
        lake_url=settings.lake_url,
        index=not args.no_index,
        vectors=False if args.no_vectors else None,
        retry_failed=args.retry_failed,
    )
    print(json.dumps(result, ensure_ascii=False) if args.json else _lines(result))
    return 0


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    """Run the forget flow (needs --yes)."""
    if not args.yes:
        raise InputError("forget", "deleting data cannot be undone: add --yes to confirm")
    configure_prefect(settings)
    from flows.forget import forget

    result = forget(args.owner, args.persona, args.alias, lake_url=settings.lake_url)
    print(json.dumps(result, ensure_ascii=False) if args.json else _lines(result))
    return 0


def cmd_train_base(args: argparse.Namespace, settings: Settings) -> int:
    """Run the train-base flow."""
    configure_prefect(settings)
    from flows.base import train_base

    if args.from_hf and not Path(args.from_hf, "config.json").is_file():
        print(f"error: {args.from_hf}: not a Hugging Face model directory (no config.json)", file=sys.stderr)
        return 2
    result = train_base(settings.lake_url, args.steps, args.from_hf)
    print(json.dumps(result, ensure_ascii=False, default=str) if args.json else _lines(result))
    return 0


def cmd_train_voice_base(args: argparse.Namespace, settings: Settings) -> int:
    """Run the train-voice-base flow."""
    if args.from_dir and not Path(args.from_dir, "config.json").is_file():
        print(f"error: {args.from_dir}: not a voice base folder (no config.json)", file=sys.stderr)
        return 2
    configure_prefect(settings)
    from flows.base import train_voice_base

    result = train_voice_base(settings.lake_url, args.steps, args.from_dir)
    print(json.dumps(result, ensure_ascii=False, default=str) if args.json else _lines(result))
    return 0


def cmd_landing(args: argparse.Namespace, settings: Settings) -> int:
    """Write generated landing files into the lake."""
    from parsers.platform import synth
    from tasks.ingest.platform import write_landing

    rooms = synth.world(args.rooms, seed=args.seed)
    files = synth.history(rooms, args.start, args.days, args.events_per_day, seed=args.seed)
    written = write_landing(open_storage(settings.lake_url), files)
    print(
        f"landing: {written} new files ({len(files)} generated) for {args.rooms} rooms in {settings.lake_url}"
    )
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the deployments until interrupted."""
    configure_prefect(settings)
    from flows.serve import serve_all

    serve_all(settings)
    return 0


def cmd_server(args: argparse.Namespace, settings: Settings) -> int:
    """Replace this process with `prefect server start` on 127.0.0.1."""
    configure_prefect(settings)
    prefect = Path(sys.executable).with_name("prefect")
    command = [
        str(prefect),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.local_prefect_port),
    ]
    print(
        f"Prefect UI and API: http://127.0.0.1:{settings.local_prefect_port} "
        f"(export PREFECT_API_URL=http://127.0.0.1:{settings.local_prefect_port}/api)",
        flush=True,
    )
    os.execv(command[0], command)
    return 0  # pragma: no cover - execv does not return


def _lines(result: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in result.items())


COMMANDS = {
    "restore": cmd_restore,
    "recycle": cmd_recycle,
    "forget": cmd_forget,
    "landing": cmd_landing,
    "train-base": cmd_train_base,
    "train-voice-base": cmd_train_voice_base,
    "serve": cmd_serve,
    "server": cmd_server,
}
