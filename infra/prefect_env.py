"""Local Prefect defaults, applied before Prefect is imported by the CLI and the entry points.

Without `PREFECT_API_URL` Prefect runs flows against a temporary local API (what tests and the
demo use); `rememberme server` starts a persistent one with the UI. Prefect's own state goes under
the project's state folder instead of `~/.prefect`, so a checkout is self-contained.
"""

from __future__ import annotations

import os
from pathlib import Path

from infra.settings import Settings


def configure_prefect(settings: Settings) -> None:
    """Set Prefect's home and quiet defaults unless the environment already chose."""
    home = Path(os.environ.get("PREFECT_HOME") or Path(settings.state_dir).resolve() / "prefect")
    home.mkdir(parents=True, exist_ok=True)  # Prefect creates only the last level
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(home / "storage"))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # The first start migrates a fresh SQLite database: allow more than the default 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
