"""The one error handler of the `rememberme` command line: one line on stderr, one exit code.

Every error a person can meet prints `rememberme: error: <what> (<how to fix>)` on stderr, with no
traceback, and exits with:

- 1 `BAD_INPUT`: the input or the configuration is wrong; running again unchanged fails again.
  `InputError` (a bad export, audio or model folder, a bad owner id, an unknown persona),
  `StorageError` (a bad lake URL), `QualityGateError`, `SearchError`, `RegistryError`,
  `VersionError`, `ParityError`, `CliError`, invalid settings (pydantic `ValidationError`),
  a file the system refuses (`OSError`: missing, unreadable, a directory), missing cloud credentials.
- 2 `USAGE`: the command line itself: an unknown command or option, a missing argument, a bad
  choice or value (Click's usage errors); the usage line and a `--help` hint follow the error line.
- 3 `UNAVAILABLE`: a service the command needs did not answer or was busy; the same command may
  succeed later. Every `infra.errors.TransientError` (`SearchUnavailableError`: Elasticsearch
  unreachable; `LeaseTimeoutError`: the persona is held by another run; `RegistryBusyError`), a
  local stand-in that cannot start (`ServiceError`), network errors (`ConnectionError`,
  `TimeoutError`), what `infra.transient.is_transient` calls transient (GCS or Elasticsearch
  answering 429/5xx, requests' connection errors), httpx transport errors and Prefect's
  "Failed to reach API".

Ctrl-C exits 130; a closed stdout (`rememberme parse x | head`) exits 0. Anything else is a bug and
keeps its traceback. The error classes are imported only when an error happens.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer

PROG = "rememberme"
OK, BAD_INPUT, USAGE, UNAVAILABLE, INTERRUPTED = 0, 1, 2, 3, 130

# Click's exceptions, whether Typer vendors Click (0.29+) or depends on it (older).
_click_exceptions = importlib.import_module(typer.BadParameter.__module__)
UsageError: type[Exception] = _click_exceptions.UsageError
ClickException: type[Exception] = _click_exceptions.ClickException


class CliError(Exception):
    """An error found by the command line itself (e.g. flags that exclude each other)."""

    def __init__(self, message: str, code: int = BAD_INPUT) -> None:
        """`message` as printed after `rememberme: error: `; `code` the exit status."""
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = BAD_INPUT) -> int:
    """Print the one error line; returns the exit status."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def with_hint(message: str, hint: str) -> str:
    """`message (hint)`; a message ending in its own parenthesis gets the hint inside it."""
    if message.endswith(")"):
        return f"{message[:-1]}; {hint})"
    return f"{message} ({hint})"


def usage(exc: Any) -> int:
    """A Click usage error: our error line first, then Click's usage line and its `--help` hint."""
    # A group called without its command: Click's message is the whole help; one line is enough.
    missing = type(exc).__name__ == "NoArgsIsHelpError"
    print(f"{PROG}: error: {'missing command' if missing else exc.format_message()}", file=sys.stderr)
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        print(ctx.get_usage(), file=sys.stderr)
        print(f"Try '{ctx.command_path} --help' for help.", file=sys.stderr)
    return USAGE


def handle(exc: BaseException) -> int:
    """Print `exc` as one error line and return its exit status; a bug (unknown class) is raised again."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        # `rememberme parse x | head`: the reader left; that is not an error.
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    if isinstance(exc, UsageError):
        return usage(exc)
    if isinstance(exc, CliError):
        return fail(str(exc), exc.code)
    busy = _unavailable(exc)  # before the user errors: SearchUnavailableError is a SearchError
    if busy is not None:
        return fail(busy, UNAVAILABLE)
    if isinstance(exc, _loaded(_USER_ERRORS)):
        return fail(str(exc))
    if isinstance(exc, _loaded((("pydantic", "ValidationError"),))):
        first = exc.errors()[0]  # type: ignore[attr-defined]
        where = ".".join(str(p) for p in first["loc"])
        return fail(f"settings: {where}: {first['msg'].removeprefix('Value error, ')}")
    if _network_error(exc):  # before OSError: ConnectionError and TimeoutError are OSErrors
        detail = str(exc) or type(exc).__name__
        return fail(with_hint(f"a service did not answer: {detail}", _RETRY), UNAVAILABLE)
    if isinstance(exc, OSError):
        name = getattr(exc, "filename", None) or ""
        return fail(f"{name}: {exc.strerror or exc}" if name else str(exc))
    if isinstance(exc, _loaded((("google.auth.exceptions", "DefaultCredentialsError"),))):
        return fail(
            with_hint(str(exc).split(". ")[0], "set GOOGLE_APPLICATION_CREDENTIALS or STORAGE_EMULATOR_HOST")
        )
    if isinstance(exc, ClickException):
        return fail(exc.format_message())  # type: ignore[attr-defined]
    raise exc


_RETRY = "check the service and the network, then try again"

#: Errors that are the user's to fix (exit 1), as (module, class).
_USER_ERRORS = (
    ("parsers.errors", "InputError"),
    ("infra.errors", "StorageError"),
    ("infra.errors", "SearchError"),
    ("infra.errors", "EmbedderError"),
    ("infra.registry", "RegistryError"),
    ("infra.versions", "VersionError"),
    ("models.errors", "ParityError"),
    ("tasks.datasets.quality", "QualityGateError"),
)


def _loaded(names: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    """The classes among `names` whose module is loaded (the error path imports nothing).

    An error can only be of a class that is loaded; some of these modules take seconds to import.
    """
    return tuple(getattr(sys.modules[module], name) for module, name in names if module in sys.modules)


def _unavailable(exc: BaseException) -> str | None:
    """The error line (with its hint) when `exc` is one of ours meaning a service is unavailable."""
    from infra.errors import SearchUnavailableError, TransientError

    if isinstance(exc, SearchUnavailableError):
        return with_hint(
            str(exc), "run `rememberme services up`, or point REMEMBERME_ES_URL at a running cluster"
        )
    if isinstance(exc, _loaded((("infra.registry", "RegistryBusyError"),))):
        return with_hint(str(exc), "other commands kept moving the same aliases; try again")
    if isinstance(exc, TransientError):  # LeaseTimeoutError and others: their message says what to do
        return str(exc)
    if isinstance(exc, _loaded((("infra.services", "ServiceError"),))):
        return str(exc)  # each names its cause and fix
    if isinstance(exc, RuntimeError) and "Failed to reach API" in str(exc):  # Prefect's API
        return with_hint(str(exc), "start it with `rememberme server`, or unset PREFECT_API_URL")
    return None


def _network_error(exc: BaseException) -> bool:
    """Connection trouble outside our own classes.

    Builtin, httpx (Prefect's client), or transient by `infra.transient` (Elasticsearch, GCS
    429/5xx, requests).
    """
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, _loaded((("httpx", "TransportError"),))):
        return True
    if not any(m in sys.modules for m in ("elasticsearch", "google.api_core", "requests")):
        return False
    from infra.transient import is_transient

    return is_transient(exc)
