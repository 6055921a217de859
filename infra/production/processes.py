"""The rehearsal's processes: each started in its own session, every one of them stopped at the end.

A server started here must not outlive the rehearsal, whatever ends it: a scenario that raises, a
Ctrl-C, a SIGTERM from `make` or a test's timeout. So:

- this process becomes a *child subreaper*: a grandchild whose parent dies (a flow run whose
  Prefect worker was killed, the daemon `noida-db up` forks) is re-parented here instead of to
  init, so it is still a descendant when the rehearsal sweeps;
- every child runs in its own session (a Ctrl-C in the terminal reaches only the rehearsal, which
  then stops them in order) under `setpriv --pdeathsig KILL` (the kernel kills it if the rehearsal
  itself is SIGKILLed);
- `stop_all` stops them newest first, then SIGKILLs any descendant left (`sweep`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import psutil

_PR_SET_CHILD_SUBREAPER = 36


class RehearsalError(Exception):
    """A step of the rehearsal could not be done (one-line cause)."""


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux): they stay ours to stop. False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def command_for(argv: list[str], user: str | None = None) -> list[str]:
    """`argv` under setpriv: killed with the rehearsal, and run as `user` when given (from root)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return argv
    prefix = [setpriv, "--pdeathsig", "KILL"]
    if user:
        prefix += ["--reuid", user, "--regid", user, "--init-groups"]
    return [*prefix, "--", *argv]


@dataclass
class Processes:
    """Named child processes with their log files under `logs`."""

    logs: Path
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        cwd: Path | None = None,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` as `name` in a new session, output to `logs/{name}.log` (appended)."""
        if name in self.started and self.started[name].poll() is None:
            raise RehearsalError(f"{name} is already running (pid {self.started[name].pid})")
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command_for(argv, user),
                env=dict(env),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started[name] = process
        return process

    def pid(self, name: str) -> int:
        """The process id of a started, running process."""
        process = self.started.get(name)
        if process is None or process.poll() is not None:
            raise RehearsalError(f"{name} is not running")
        return process.pid

    def alive(self, name: str) -> bool:
        """Whether `name` was started and has not exited."""
        process = self.started.get(name)
        return process is not None and process.poll() is None

    def tree(self, name: str) -> list[psutil.Process]:
        """`name`'s process and every process below it (setpriv execs in place: same pid)."""
        with contextlib.suppress(psutil.Error, RehearsalError):
            root = psutil.Process(self.pid(name))
            return [root, *root.children(recursive=True)]
        return []

    def kill_tree(self, name: str) -> int:
        """SIGKILL `name` and all its descendants at once, as a lost machine; how many were killed."""
        victims = self.tree(name)
        for victim in victims:
            with contextlib.suppress(psutil.Error):
                victim.kill()
        self._reap(name, 10.0)
        return len(victims)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
        """Signal `name`'s process group, wait, then SIGKILL whatever of its tree is left."""
        process = self.started.get(name)
        if process is None:
            return
        if process.poll() is None:
            descendants = self.tree(name)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout_s)
            for left in descendants:
                with contextlib.suppress(psutil.Error):
                    left.kill()
        self._reap(name, 5.0)

    def _reap(self, name: str, timeout_s: float) -> None:
        process = self.started.pop(name, None)
        if process is None:
            return
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=timeout_s)

    def stop_all(self, timeout_s: float = 15.0) -> None:
        """Stop every started process, newest first, then sweep what is left below this process."""
        for name in reversed(list(self.started)):
            with contextlib.suppress(Exception):
                self.stop(name, timeout_s=timeout_s)
        sweep()


def sweep() -> list[int]:
    """SIGKILL every live descendant of this process (what stopping the named ones left behind)."""
    try:
        left = [p for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    except psutil.Error:
        return []
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(left, timeout=5)
    return [p.pid for p in left]


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP end the rehearsal like Ctrl-C does: through its `finally` teardown."""

    def _raise(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {s: signal.signal(s, _raise) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.5) -> None:
    """Poll `predicate()` until true; RehearsalError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every_s)
    raise RehearsalError(f"{what}: not within {timeout_s:.0f}s")
