"""Every torch -> ONNX export of the project runs here, in one long-lived exporter process.

Why a process and not a lock: `torch.export` keeps process-global state while it traces (its
dispatch-mode stack, and FX's tracer patches `torch.nn.Module.__call__` itself for the duration).
Two exports on two threads corrupt each other ("Trying to pop empty mode stack"), and a persona
*training* on another thread while an export traces would have its module calls go through the
tracer's patch. A lock around exports fixes only the first. One exporter process per pipeline
process isolates both: the caller's threads keep training, indexing and preparing data in
parallel, exports queue for the exporter (one at a time: a lock guards the pipe), and the
process stays up so torch's import is paid once, not per export.

Protocol over pipes: a request is an 8-byte length + a `torch.save` payload (the module, example
inputs, names, dynamic axes as plain tuples); the answer is the same framing around
`("ok", bytes)` or `("error", type name, message)`. `subprocess`, not `multiprocessing`, so it
also works inside Dask's daemonic worker processes, which may not fork multiprocessing children.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import struct
import subprocess
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass
from typing import IO, Any

import torch
from torch import nn

#: input name -> {axis: (dim name, min, max)} or None for a static input (picklable, unlike Dim).
DynamicAxes = dict[str, dict[int, tuple[str, int, int]] | None]

_HEADER = struct.Struct("<Q")
#: An export of our models takes seconds; a minute-long stall means the exporter is stuck.
EXPORT_TIMEOUT_S = 600.0


class ExportError(RuntimeError):
    """The exporter refused or failed on a model (its type name and first line are kept)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class _DiedError(Exception):
    timed_out = False


@dataclass(frozen=True)
class ExportJob:
    """What one export needs, all of it picklable."""

    module: nn.Module
    args: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    dynamic: DynamicAxes


def export_here(job: ExportJob) -> bytes:
    """Run the ONNX (dynamo) exporter in this process: only the exporter process should call this."""
    dims: dict[tuple[str, int, int], Any] = {}

    def dim(spec: tuple[str, int, int]) -> Any:
        if spec not in dims:
            dims[spec] = torch.export.Dim(spec[0], min=spec[1], max=spec[2])
        return dims[spec]

    dynamic = {
        name: None if axes is None else {axis: dim(spec) for axis, spec in axes.items()}
        for name, axes in job.dynamic.items()
    }
    module = job.module.to("cpu").eval()
    # The exporter logs a warning per missing torchvision op; nothing here uses torchvision.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                job.args,
                dynamo=True,
                input_names=job.input_names,
                output_names=job.output_names,
                dynamic_shapes=dynamic,
                verbose=False,
            )
    finally:
        logger.setLevel(level)
    if program is None:
        raise ExportError("RuntimeError", "torch.onnx.export returned no program")
    data: bytes = program.model_proto.SerializeToString()
    return data


def _send(stream: IO[bytes], payload: object) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> bytes:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the exporter process closed its pipe")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the exporter process closed its pipe mid-answer")
    return data


def _load(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), weights_only=False)  # pickles of our own processes


def _receive(stream: IO[bytes]) -> Any:
    return _load(_read_frame(stream))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "")[:500]


class ExporterProcess:
    """The pipeline process's one exporter child: started on first use, restarted if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        # The child's own warnings go to a file whose tail explains a crash (not to the flow log).
        self._stderr = tempfile.TemporaryFile(prefix="rememberme-exporter-")  # noqa: SIM115 (lives with the child)
        # The parent's import path: a module class defined anywhere the parent imports from loads.
        path = os.pathsep.join(p for p in sys.path if p)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "models.exporter"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        return self._proc

    def _crash_detail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = [line for line in self._stderr.read().decode(errors="replace").splitlines() if line]
        return f": {lines[-1][:300]}" if lines else ""

    def export(self, job: ExportJob, timeout_s: float = EXPORT_TIMEOUT_S) -> bytes:
        """ONNX bytes of `job`, exported in the exporter process (one export at a time).

        An exporter found dead (killed, out of memory) is replaced and the job sent once more; a
        second death, or a stall past `timeout_s`, is an `ExportError`.
        """
        with self._lock:
            try:
                try:
                    answer = self._ask(job, timeout_s)
                except _DiedError as died:
                    if died.timed_out:
                        raise
                    answer = self._ask(job, timeout_s)
            except _DiedError as died:
                raise ExportError("ExporterDied", str(died)) from None
        if answer[0] == "ok":
            data: bytes = answer[1]
            return data
        raise ExportError(answer[1], answer[2])

    def _ask(self, job: ExportJob, timeout_s: float) -> Any:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        try:
            _send(proc.stdin, job)
            return _receive(proc.stdout)
        except (EOFError, OSError) as exc:  # OSError covers a broken pipe
            proc.kill()
            proc.wait()
            timed_out = not timer.is_alive()
            why = "timed out" if timed_out else f"died (exit {proc.returncode})"
            died = _DiedError(f"the ONNX exporter process {why}{self._crash_detail()}")
            died.timed_out = timed_out
            raise died from exc
        finally:
            timer.cancel()

    def close(self) -> None:
        """Stop the child (at exit, or to free its memory)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
            self._proc = None

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs (tests check it is reused)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None


_EXPORTER = ExporterProcess()
atexit.register(_EXPORTER.close)


def exporter() -> ExporterProcess:
    """The exporter of this process."""
    return _EXPORTER


def export_isolated(job: ExportJob) -> bytes:
    """ONNX bytes of `job`; safe to call from any number of threads at once."""
    return _EXPORTER.export(job)


def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    while True:
        try:
            frame = _read_frame(requests)
        except EOFError:
            return
        try:  # a module class this process cannot import fails here, as an answer
            answer: tuple[Any, ...] = ("ok", export_here(_load(frame)))
        except ExportError as exc:
            answer = ("error", exc.kind, exc.detail)
        except Exception as exc:  # the exporter raises many types; the caller gets the first line
            answer = ("error", type(exc).__name__, _one_line(exc))
        _send(answers, answer)


def main() -> None:
    """The exporter process: answer export requests on stdin/stdout until stdin closes."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints of libraries go to stderr, never into the answer stream
    _serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
