"""Kill points in-process: a fault raises instead of SIGKILL, so a test resumes in the same interpreter."""

from __future__ import annotations

import contextlib
from collections.abc import Callable


class KilledError(Exception):
    """Raised by a kill point in-process."""


def killed() -> None:
    """Stand-in for infra.faults._die."""
    raise KilledError


KillAt = Callable[[str], contextlib.AbstractContextManager[None]]
