"""How commands print: one JSON document with `--json`, plain lines otherwise, Rich only on a terminal.

Plain output is what scripts, tests and the README read, so it is what a pipe gets; a terminal
gets a Rich table where one helps (`formats`, `models list`, `search`). Rich never colours a pipe.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: Files larger than this get a progress bar when stderr is a terminal.
PROGRESS_MIN_BYTES = 16 * 1024 * 1024


def emit_json(data: Any, *, indent: int | None = None) -> None:
    """The machine-readable result: one JSON document on stdout (non-ASCII kept as is)."""
    print(json.dumps(data, ensure_ascii=False, indent=indent, default=str))


def lines(result: dict[str, Any]) -> str:
    """A flow's result dict as `key: value` lines."""
    return "\n".join(f"{k}: {v}" for k, v in result.items())


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], plain: Sequence[str]) -> None:
    """A Rich table on a terminal; on a pipe the `plain` lines, unchanged (what scripts parse)."""
    if not sys.stdout.isatty():
        for line in plain:
            print(line)
        return
    from rich.console import Console
    from rich.table import Table

    view = Table(*headers, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        view.add_row(*(str(cell) for cell in row))
    Console().print(view)


@contextlib.contextmanager
def progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A byte progress bar on stderr for big files on a terminal; None (no callback) otherwise."""
    if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("parse", total=total)
        yield lambda n: bar.advance(task, n)
