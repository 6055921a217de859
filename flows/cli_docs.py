"""The CLI reference page of the documentation, generated from the Typer app (so it cannot drift).

`mkdocs build` calls `cli_reference()` through docs/hooks/cli_reference.py; the test of the command
list checks the same page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from flows.cli import app

# Typer builds its commands on the Click it vendors: they are handled by what they have (their
# `context_class`, `param_type_name`), not by Click's classes.


def command_tree(
    command: Any | None = None, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the app as (path, click command), the root first, groups before their actions."""
    command = command if command is not None else typer.main.get_command(app)
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from command_tree(sub, (*path, name))


def cli_reference() -> str:
    """Markdown: each command's usage, help and options, as `rememberme COMMAND --help` gives them."""
    parts = [
        "# CLI reference",
        "",
        "Generated from the Typer app (`flows/cli.py`) when the site is built; "
        "`rememberme COMMAND --help` prints the same.",
        "",
    ]
    for path, command in command_tree():
        if not path:
            continue
        name = " ".join(("rememberme", *path))
        ctx = command.context_class(command, info_name=name)
        parts += [f"## `{name}`", "", (command.help or command.short_help or "").strip(), ""]
        parts += ["```", command.get_usage(ctx).removeprefix("Usage: "), "```", ""]
        rows = [_option_row(param, ctx) for param in command.get_params(ctx) if param.name != "help"]
        if rows:
            parts += ["| argument or option | meaning | default |", "|---|---|---|", *rows, ""]
    return "\n".join(parts).rstrip() + "\n"


def _option_row(param: Any, ctx: Any) -> str:
    names = ", ".join(f"`{n}`" for n in (*param.opts, *param.secondary_opts))
    if param.param_type_name == "argument":
        names = f"`{(param.metavar or param.name or '').upper()}`"
    meaning = getattr(param, "help", None) or ""
    default = param.get_default(ctx) if not param.required else None
    shown = "" if default in (None, False, (), []) else f"`{default}`"
    return f"| {names} | {_cell(meaning)} | {_cell(shown)} |"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
