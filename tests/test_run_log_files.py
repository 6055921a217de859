"""The debug log is a derived store: redacted, rotated, and deleted by a forget."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from tasks.runs import run_logs


def test_the_debug_log_is_redacted_rotated_and_purged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEMBERME_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(run_logs, "DEBUG_LOG_BYTES", 2_000)
    logger = logging.getLogger("test-debug-log")
    handler = logging.StreamHandler(io.StringIO())  # the console: one line each
    handler.addFilter(run_logs._OneLineFailures())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for n in range(6):
            try:
                raise RuntimeError(f"cannot convert cell '010-2345-678{n}' (row {n}) to int64")
            except RuntimeError:
                logger.exception("task failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    path = run_logs.debug_log_path()
    written = [path, *path.parent.glob("debug.log.*")]
    text = "".join(p.read_text(encoding="utf-8") for p in written if p.exists())
    assert "Traceback" in text and "<phone_1>" in text and "010-2345-678" not in text
    assert 1 < len([p for p in written if p.exists()]) <= run_logs.DEBUG_LOG_FILES  # rotated, bounded
    assert run_logs.purge_debug_logs() >= 2 and not list(path.parent.glob("debug.log*"))
