"""MkDocs hook: the CLI reference page, generated from the Typer app at every build."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def on_files(files: Files, config: Any) -> Files:
    """Add `reference/cli.md`, rendered from `flows.cli_docs.cli_reference()`."""
    from flows.cli_docs import cli_reference

    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    return files
