"""The `rememberme` command line (Typer): arguments in, plain functions called, one-line errors out.

The commands live by concept in `cli_data` (parse, ingest, dataset, index, search, services),
`cli_flows` (restore, recycle, forget, landing, train-base, train-voice-base, serve, server),
`cli_models` (models, chat, eval, speak), `cli_consent` and `cli_locks`; their shared options in
`cli_options`; every error goes through `cli_errors.handle` (exit 1 bad input, 2 usage, 3 a service
unavailable).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from flows import cli_consent, cli_data, cli_flows, cli_locks, cli_models
from flows.cli_errors import INTERRUPTED, PROG, handle
from flows.cli_output import PROGRESS_MIN_BYTES
from flows.cli_output import progress as _progress
from infra.settings import get_settings

__all__ = ["PROG", "PROGRESS_MIN_BYTES", "_progress", "app", "main"]

app = typer.Typer(
    name=PROG,
    help="Restore a loved one's persona from their chats.",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
cli_data.register(app)
cli_flows.register(app)
cli_models.register(app)
cli_consent.register(app)
cli_locks.register(app)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script (and of tests): run one command, return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    get_settings.cache_clear()  # settings are read once per run, not once per process
    try:
        command = typer.main.get_command(app)
        with command.make_context(PROG, args) as ctx:
            result = command.invoke(ctx)
        return result if isinstance(result, int) else 0
    except typer.Exit as done:  # --help, or a command that ends early on purpose
        return int(done.exit_code)
    except typer.Abort:
        return INTERRUPTED
    except (Exception, KeyboardInterrupt) as exc:
        return handle(exc)


if __name__ == "__main__":
    raise SystemExit(main())
