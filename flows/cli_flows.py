"""`rememberme restore|recycle|forget|landing|train-base|train-voice-base|serve|server`: the flows.

Prefect is imported only here, inside the commands, after `configure_prefect` chose its home:
the plain commands (parse, ingest, ...) start without it.
"""

import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli_options import (
    Aliases,
    DateOrder,
    Day,
    Json,
    Lake,
    MinPairsOrDefault,
    NoIndex,
    NoVectors,
    Owner,
    Persona,
    PersonaFilter,
    Steps,
    settings,
)
from flows.cli_output import emit_json, lines
from parsers.errors import InputError

Folder = Annotated[str | None, typer.Option(metavar="DIR")]


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.command("restore", help="instant restore: export(s) -> dataset -> index (a flow run)")(cmd_restore)
    app.command("recycle", help="one data-recycling pass over the platform landing area")(cmd_recycle)
    app.command("forget", help="delete a persona's (or an owner's) data everywhere")(cmd_forget)
    app.command("landing", help="generate realistic platform landing data (demo, tests)")(cmd_landing)
    app.command(
        "train-base", help="pretrain the shared base on the lake's conversations, or import a local LM"
    )(cmd_train_base)
    app.command(
        "train-voice-base", help="pretrain the multi-speaker voice base, or import one from a folder"
    )(cmd_train_voice_base)
    app.command("serve", help="register the deployments and run their flow runs (Ctrl-C stops)")(cmd_serve)
    app.command("server", help="start the Prefect server and UI locally (SQLite, 127.0.0.1)")(cmd_server)


def _local(source: str) -> str:
    """A local path made absolute (flow runs may run elsewhere); a lake key as given."""
    return str(Path(source).resolve()) if Path(source).exists() else source


def cmd_restore(
    exports: Annotated[
        list[str],
        typer.Argument(
            metavar="EXPORT",
            help="chat exports (KakaoTalk, WhatsApp, SMS, Telegram, Messenger, ...): paths or lake keys",
        ),
    ],
    owner: Owner,
    persona: Persona,
    alias: Aliases = None,
    lake: Lake = None,
    no_index: NoIndex = False,
    no_vectors: NoVectors = False,
    no_train: Annotated[bool, typer.Option("--no-train", help="stop before training a model")] = False,
    audio: Annotated[
        list[str] | None,
        typer.Option(
            "--audio",
            metavar="FILE",
            help="an audio file of the persona's voice (repeatable; a .txt beside it is its transcript)",
        ),
    ] = None,
    steps: Steps = None,
    min_pairs: MinPairsOrDefault = None,
    date_order: DateOrder = None,
    as_json: Json = False,
) -> None:
    """Run the instant-restore flow; bad exports are refused before any run starts."""
    from infra import services
    from infra.prefect_env import configure_prefect
    from infra.storage import open_storage
    from parsers.exports import inspect_export
    from parsers.kakao.export import check_readable

    s = settings(lake=lake)
    storage = open_storage(s.lake_url)
    for source in exports:
        path = Path(source)
        if path.exists() or not storage.exists(source):
            check_readable(path, source)
            if path.suffix.lower() != ".zip":
                inspect_export(path, None, source, date_order=date_order)
    for clip in audio or []:  # refused before any run starts, like a bad export
        if not Path(clip).is_file() and not storage.exists(clip):
            raise InputError(clip, "no such audio file")
    if not no_index:  # a search server that cannot be used stops us now, not after training
        services.elasticsearch_url(s)
    configure_prefect(s)
    from flows.restore import instant_restore

    result = instant_restore(
        owner,
        persona,
        [_local(x) for x in exports],
        aliases=alias or [],
        lake_url=s.lake_url,
        index=not no_index,
        vectors=False if no_vectors else None,
        train=not no_train,
        train_steps=steps,
        min_pairs=min_pairs,
        audio=[_local(a) for a in audio or []],
        date_order=date_order,
    )
    if as_json:
        emit_json(result)
    else:
        _print_restored(result, owner, persona)


def _print_restored(result: dict[str, Any], owner: str, persona: str) -> None:
    counts = result["dataset"]["counts"]
    print(f"restored {persona} for {owner}: {result['messages']} messages")
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
        print(f"  {persona}: {result['reply']['reply']}")
    voice = result.get("voice") or {}
    if voice.get("dataset"):
        d = voice["dataset"]
        voiced = f", voice model v{voice['model_version']}" if voice.get("model_version") else ""
        print(f"  voice dataset v{d['version']}: {d['segments']} utterances, {d['minutes']:.1f} min{voiced}")


def cmd_recycle(
    as_of: Day = None,
    lake: Lake = None,
    no_index: NoIndex = False,
    no_vectors: NoVectors = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="also retry pieces parked after failing 3 passes in a row (after fixing their cause)",
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Run one data-recycling pass (`--as-of`: the pass's day, default today)."""
    from infra.prefect_env import configure_prefect

    s = settings(lake=lake)
    configure_prefect(s)
    from flows.recycle import data_recycling

    result = data_recycling(
        as_of=as_of,
        lake_url=s.lake_url,
        index=not no_index,
        vectors=False if no_vectors else None,
        retry_failed=retry_failed,
    )
    _print_result(result, as_json)


def cmd_forget(
    owner: Owner,
    persona: PersonaFilter = None,
    alias: Aliases = None,
    lake: Lake = None,
    yes: Annotated[bool, typer.Option("--yes", help="confirm: this cannot be undone")] = False,
    as_json: Json = False,
) -> None:
    """Run the forget flow (needs --yes)."""
    from infra.prefect_env import configure_prefect

    if not yes:
        raise InputError("forget", "deleting data cannot be undone: add --yes to confirm")
    s = settings(lake=lake)
    configure_prefect(s)
    from flows.forget import forget

    _print_result(forget(owner, persona, alias or [], lake_url=s.lake_url), as_json)


def cmd_landing(
    rooms: Annotated[
        int, typer.Option("--rooms", metavar="N", help="rooms (one remembered person each)")
    ] = 10,
    days: Annotated[int, typer.Option("--days", metavar="N", help="days of data")] = 30,
    start: Annotated[
        date | None,
        typer.Option(
            "--start", metavar="YYYY-MM-DD", parser=date.fromisoformat, help="first day (2024-03-01)"
        ),
    ] = None,
    events_per_day: Annotated[
        int, typer.Option("--events-per-day", metavar="N", help="chat events per day")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="generator seed")] = 1,
    lake: Lake = None,
    as_json: Json = False,
) -> None:
    """Write generated landing files into the lake."""
    from infra.storage import open_storage
    from parsers.platform import synth
    from tasks.ingest.platform import write_landing

    s = settings(lake=lake)
    world = synth.world(rooms, seed=seed)
    files = synth.history(world, start or date(2024, 3, 1), days, events_per_day, seed=seed)
    written = write_landing(open_storage(s.lake_url), files)
    if as_json:
        emit_json({"written": written, "generated": len(files), "rooms": rooms, "lake_url": s.lake_url})
    else:
        print(f"landing: {written} new files ({len(files)} generated) for {rooms} rooms in {s.lake_url}")


def _model_folder(path: str | None, what: str) -> None:
    if path and not Path(path, "config.json").is_file():
        raise InputError(path, f"not a {what} (no config.json)")


def cmd_train_base(
    steps: Annotated[
        int | None,
        typer.Option("--steps", metavar="N", help="training steps", show_default="2x the persona steps"),
    ] = None,
    from_hf: Annotated[
        str | None,
        typer.Option(
            "--from-hf",
            metavar="DIR",
            help="import a local Hugging Face causal-LM directory (config.json, weights, tokenizer.json) "
            "as the base instead of pretraining one; nothing downloads",
        ),
    ] = None,
    lake: Lake = None,
    as_json: Json = False,
) -> None:
    """Run the train-base flow."""
    from infra.prefect_env import configure_prefect

    _model_folder(from_hf, "Hugging Face model directory")
    s = settings(lake=lake)
    configure_prefect(s)
    from flows.base_models import train_base

    _print_result(train_base(s.lake_url, steps, from_hf), as_json)


def cmd_train_voice_base(
    steps: Annotated[
        int | None, typer.Option("--steps", metavar="N", help="training steps", show_default="600")
    ] = None,
    from_dir: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="DIR",
            help="import a voice base folder (config.json + weights.pt or model.safetensors) instead",
        ),
    ] = None,
    lake: Lake = None,
    as_json: Json = False,
) -> None:
    """Run the train-voice-base flow."""
    from infra.prefect_env import configure_prefect

    _model_folder(from_dir, "voice base folder")
    s = settings(lake=lake)
    configure_prefect(s)
    from flows.base_models import train_voice_base

    _print_result(train_voice_base(s.lake_url, steps, from_dir), as_json)


def cmd_serve() -> None:
    """Serve the deployments until interrupted."""
    from infra.prefect_env import configure_prefect

    s = settings()
    configure_prefect(s)
    from flows.serve import serve_all

    serve_all(s)


def cmd_server() -> None:
    """Replace this process with `prefect server start` on 127.0.0.1."""
    from infra.prefect_env import configure_prefect

    s = settings()
    configure_prefect(s)
    prefect = Path(sys.executable).with_name("prefect")
    port = str(s.local_prefect_port)
    command = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", port]
    print(
        f"Prefect UI and API: http://127.0.0.1:{port} (export PREFECT_API_URL=http://127.0.0.1:{port}/api)",
        flush=True,
    )
    os.execv(command[0], command)


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(result)
    else:
        print(lines(result))
