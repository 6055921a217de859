"""Model errors, importable without torch (the CLI catches them)."""

from __future__ import annotations


class ParityError(Exception):
    """The exported model does not compute what the torch model computes."""
