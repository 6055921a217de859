"""Logs a person can read: every failure is one line in the flow log; stack traces go to a file.

Prefect logs a failed task or flow with its exception's repr and the whole traceback (300 lines
for a torch export error), to the console and to the UI. The filter installed here rewrites such a
record, on every handler of the root and Prefect loggers, into one line: the message with the
exception reduced to `Type: first line of its text`. An expected error (bad input, a failed quality
gate) needs nothing more; for any other error the full record, traceback included, is first
written to the debug log (`<state_dir>/logs/debug.log`, `REMEMBERME_STATE_DIR`), and the line says
where to find it. The debug log is a derived store like any other: what it writes is redacted first
(pyarrow and pandas quote cells in their errors), it rotates (`DEBUG_LOG_BYTES` x `DEBUG_LOG_FILES`),
and a forget deletes it (`purge_debug_logs`): names are not personal values redaction can find.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import threading
from pathlib import Path

from infra.errors import TerminalError, TransientError
from infra.settings import Settings
from parsers.errors import InputError
from tasks.datasets.quality import QualityGateError

#: Failures that are the input's fault or say at their source what they are (infra/errors.py):
#: one line, and no traceback anywhere.
EXPECTED_ERRORS = (InputError, QualityGateError, TerminalError, TransientError)
_MAX_LINE = 400
DEBUG_LOG_BYTES = 5_000_000
DEBUG_LOG_FILES = 3
_DEBUG = logging.getLogger("rememberme.debug")
_DEBUG.propagate = False  # never back into the console or the UI
_setup_lock = threading.Lock()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(exc: BaseException) -> str:
    """`Type: first line of the text` (no terminal colours), at most 400 characters."""
    lines = [line for line in _ANSI.sub("", str(exc)).strip().splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0].strip()}" if lines else type(exc).__name__
    return text[:_MAX_LINE]


def debug_log_path(settings: Settings | None = None) -> Path:
    """Where full tracebacks are written."""
    return Path((settings or Settings()).state_dir) / "logs" / "debug.log"


class _Redacted(logging.Formatter):
    """The record as text, its personal values (phone, account, card, ...) replaced by pseudonyms."""

    def format(self, record: logging.LogRecord) -> str:
        from tasks.trust.pii import Pseudonymizer, redact

        return redact(super().format(record), Pseudonymizer())[0]


def _debug_handler(path: Path) -> logging.Handler:
    for handler in _DEBUG.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path.resolve():
            return handler
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=DEBUG_LOG_BYTES, backupCount=DEBUG_LOG_FILES - 1, encoding="utf-8", delay=True
    )
    handler.setFormatter(_Redacted("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    _DEBUG.addHandler(handler)
    _DEBUG.setLevel(logging.DEBUG)
    return handler


def purge_debug_logs(settings: Settings | None = None) -> int:
    """Delete the debug log and its rotations (a forget: they may quote the subject); how many went."""
    path = debug_log_path(settings).resolve()
    for handler in list(_DEBUG.handlers):  # this process's open file goes first
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path:
            _DEBUG.removeHandler(handler)
            handler.close()
    removed = 0
    for item in [path, *path.parent.glob(f"{path.name}.*")] if path.parent.is_dir() else []:
        if item.is_file():
            item.unlink(missing_ok=True)
            removed += 1
    return removed


class _OneLineFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            if record.levelno >= logging.WARNING:  # e.g. "Finished in state Failed('<whole text>')"
                message = record.getMessage()
                if _first_line(message) != message:
                    record.msg, record.args = _first_line(message), ()
            return True
        message = _first_line(record.getMessage().replace(repr(exc), one_line(exc)))
        if not isinstance(exc, EXPECTED_ERRORS):  # the whole story, once, for whoever debugs it
            path = debug_log_path().resolve()  # read now: the settings may change between runs
            _debug_handler(path).handle(record)
            message += f" (traceback in {path})"
        record.msg, record.args = message, ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _first_line(message: str) -> str:
    """The first line (also of a repr, whose newlines are escaped), without terminal colours."""
    clean = _ANSI.sub("", message).strip()
    first = (clean.splitlines() or [""])[0].split("\\n")[0]
    return first[:_MAX_LINE] + " …" if first != clean or len(first) > _MAX_LINE else first


def readable_failure_logs() -> None:
    """Install the one-line filter on the root and Prefect handlers of this process (idempotent).

    Called by every flow and by the fanned-out tasks (a Dask worker is another process).
    """
    loggers = [
        logging.getLogger(),
        *(logging.getLogger(n) for n in ("prefect", "prefect.flow_runs", "prefect.task_runs")),
    ]
    with _setup_lock:
        for logger in loggers:
            for handler in logger.handlers:
                if not any(isinstance(f, _OneLineFailures) for f in handler.filters):
                    handler.addFilter(_OneLineFailures())
