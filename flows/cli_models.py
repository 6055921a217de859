"""`rememberme models list|show|promote|rollback`, `chat`, `eval` and `speak`."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from flows.cli_options import Json, Lake, ModelKind, Owner, Persona, Version, settings
from flows.cli_output import emit_json, table
from parsers.errors import InputError

if TYPE_CHECKING:
    from infra.registry import Registry

models_app = typer.Typer(help="published checkpoints: list, show, promote, roll back", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.add_typer(models_app, name="models")
    app.command("chat", help="talk with a published persona (onnxruntime + retrieval)")(cmd_chat)
    app.command("speak", help="render text in a persona's published voice to a WAV file")(cmd_speak)
    app.command("eval", help="score a persona version on its held-out conversations")(cmd_eval)


def _registry(owner: str, persona: str, lake: str | None) -> tuple["Registry", str, str]:
    from infra.registry import Registry
    from infra.storage import open_storage
    from schemas.names import slug, validate_owner

    return Registry(open_storage(settings(lake=lake).lake_url)), validate_owner(owner), slug(persona)


@models_app.command("list", help="versions and aliases of a persona's models")
def cmd_models_list(
    owner: Owner, persona: Persona, kind: ModelKind = "text", lake: Lake = None, as_json: Json = False
) -> None:
    """One row a version: when, from which dataset, its validation loss, its aliases."""
    registry, owner, persona = _registry(owner, persona, lake)
    aliases = registry.aliases(owner, persona, kind)
    rows = []
    for v in registry.versions(owner, persona, kind):
        m = registry.manifest(owner, persona, kind, v)
        rows.append(
            {
                "version": v,
                "created_at": m["created_at"],
                "dataset_version": (m.get("dataset") or {}).get("version"),
                "val_loss": (m.get("metrics") or {}).get("val_loss"),
                "aliases": sorted(a for a, n in aliases.items() if n == v),
            }
        )
    if as_json:
        emit_json({"owner_id": owner, "persona": persona, "kind": kind, "versions": rows})
        return
    if not rows:
        print(f"no {kind} models for {owner}/{persona}")
        return
    cells = [
        (f"v{r['version']}", r["created_at"][:19], f"v{r['dataset_version']}",
         f"{r['val_loss']:.3f}" if isinstance(r["val_loss"], float) else "-", " ".join(r["aliases"]))
        for r in rows
    ]  # fmt: skip
    plain = [f"{v:<5} {when}  dataset {d}  val_loss {loss}  {tags}" for v, when, d, loss, tags in cells]
    table(("version", "created", "dataset", "val_loss", "aliases"), cells, plain)


@models_app.command("show", help="the manifest of one version")
def cmd_models_show(
    owner: Owner,
    persona: Persona,
    kind: ModelKind = "text",
    version: Version = None,
    lake: Lake = None,
    as_json: Json = False,
) -> None:
    """The manifest as JSON (indented for people, one line with --json).

    For people, the reply profile's hashes (bland lines, filler words, word list) are counted, not listed.
    """
    registry, owner, persona = _registry(owner, persona, lake)
    manifest = registry.manifest(owner, persona, kind, registry.resolve(owner, persona, kind, version))
    if not as_json and isinstance(manifest.get("chat"), dict):
        from tasks.replies.ranker import Calibration

        manifest = {**manifest, "chat": Calibration.from_manifest(manifest).summary()}
    emit_json(manifest, indent=None if as_json else 1)


@models_app.command("promote", help="point production at a version")
def cmd_models_promote(
    owner: Owner,
    persona: Persona,
    version: Annotated[str, typer.Option("--version", metavar="N|ALIAS", help="a version number or alias")],
    kind: ModelKind = "text",
    lake: Lake = None,
    as_json: Json = False,
) -> None:
    """Move the production alias; prints the aliases."""
    registry, owner, persona = _registry(owner, persona, lake)
    resolved = registry.resolve(owner, persona, kind, version)
    _print_aliases(registry.set_alias(owner, persona, kind, "production", resolved), as_json)


@models_app.command("rollback", help="move production back to the version before")
def cmd_models_rollback(
    owner: Owner, persona: Persona, kind: ModelKind = "text", lake: Lake = None, as_json: Json = False
) -> None:
    """Production goes back one step; prints the aliases."""
    registry, owner, persona = _registry(owner, persona, lake)
    registry.rollback(owner, persona, kind)
    _print_aliases(registry.aliases(owner, persona, kind), as_json)


def _print_aliases(aliases: dict[str, int], as_json: bool) -> None:
    if as_json:
        emit_json(aliases)
    else:
        print(" ".join(f"{a}=v{v}" for a, v in sorted(aliases.items())))


def cmd_chat(
    owner: Owner,
    persona: Persona,
    version: Version = None,
    message: Annotated[
        str | None,
        typer.Option("--message", metavar="TEXT", help="answer this one message and exit (for scripts)"),
    ] = None,
    mode: Annotated[
        Literal["retrieve", "generate", "hybrid"], typer.Option("--mode", help="answer mode")
    ] = "hybrid",
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", help="sampling temperature", show_default="the chat's, 0.8"),
    ] = None,
    top_p: Annotated[
        float | None, typer.Option("--top-p", help="nucleus sampling mass", show_default="the chat's, 0.9")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="sampling seed", show_default="the chat's, 0")
    ] = None,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="do not use the search index")] = False,
    lake: Lake = None,
    as_json: Json = False,
) -> None:
    """One reply to --message, or an interactive conversation on a terminal."""
    from infra import services
    from infra.search import connect
    from infra.storage import open_storage
    from infra.text_features import default_embedder
    from schemas.names import slug, validate_owner
    from tasks.replies.chat import PersonaChat

    s = settings(lake=lake)
    storage = open_storage(s.lake_url)
    owner, persona = validate_owner(owner), slug(persona)
    client = None if no_retrieval else connect(services.elasticsearch_url(s))
    given: dict[str, Any] = {"temperature": temperature, "top_p": top_p, "seed": seed}
    sampling = {k: v for k, v in given.items() if v is not None}  # unset: PersonaChat's own defaults
    embedder = None if no_retrieval else default_embedder()
    chat = PersonaChat(storage, owner, persona, version, client, embedder, mode, **sampling)
    if message is not None:
        reply = chat.reply(message)
        if as_json:
            emit_json(
                {"reply": reply.text, "source": reply.mode, "notice": reply.notice, "version": chat.version}
            )
        else:
            print(reply.render())
        return
    if not sys.stdin.isatty():
        raise InputError("chat", "no terminal: pass --message TEXT for one reply")
    print(f"{persona} (v{chat.version}) — Ctrl-D to leave")
    while True:
        try:
            said = input("> ").strip()
        except EOFError:
            print()
            return
        if said:
            print(chat.reply(said).render())


def cmd_eval(
    owner: Owner, persona: Persona, version: Version = None, lake: Lake = None, as_json: Json = False
) -> None:
    """Print a version's scorecard, beside production's when it is another version."""
    from infra.registry import Registry
    from infra.storage import open_storage
    from infra.text_features import default_embedder
    from schemas.names import slug, validate_owner
    from tasks.training.conversation_eval import evaluate_persona, side_by_side, to_json

    owner, persona = validate_owner(owner), slug(persona)
    storage, embedder = open_storage(settings(lake=lake).lake_url), default_embedder()
    meta, card = evaluate_persona(storage, owner, persona, version, embedder)
    production = Registry(storage).aliases(owner, persona, "text").get("production")
    theirs = None
    if production is not None and production != meta["version"]:
        # On this version's held-out contexts, so both answer the same questions.
        _, theirs = evaluate_persona(storage, owner, persona, production, embedder, meta["dataset_version"])
    if as_json:
        extra = {"production": {"version": production, **theirs.to_dict()}} if theirs else {}
        print(to_json({**meta, **extra}, card))
        return
    title = f"{persona} v{meta['version']} (dataset v{meta['dataset_version']})"
    if theirs is None:
        print(card.markdown(title))
    else:
        print(f"# {title} beside production v{production}\n")
        print(side_by_side(card, theirs, (f"v{meta['version']}", f"production v{production}")))


def cmd_speak(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="what to say")],
    owner: Owner,
    persona: Persona,
    output: Annotated[Path, typer.Option("-o", "--output", metavar="WAV", help="the WAV file to write")],
    version: Version = None,
    lake: Lake = None,
    as_json: Json = False,
) -> None:
    """Write a WAV of the text in the persona's voice."""
    from infra.storage import open_storage
    from schemas.names import validate_owner
    from tasks.voice.voice_model import speak

    storage = open_storage(settings(lake=lake).lake_url)
    data = speak(storage, validate_owner(owner), persona, text, version)
    output.write_bytes(data)
    seconds = len(data) / 44100
    if as_json:
        emit_json({"output": str(output), "bytes": len(data), "seconds": round(seconds, 2)})
    else:
        print(f"wrote {output} ({seconds:.1f} s)")
