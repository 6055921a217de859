"""Errors that say at the source whether trying again can help (as dlt's transient/terminal do).

A class deriving from `TransientError` is worth a retry (a server down, a lock held, a race lost
too often); one deriving from `TerminalError` gives the same answer on every try (bad input, a
wrong setting, a refused key), so retrying it only delays the one-line error a person needs.
Library exceptions that carry neither mark are classified by infra/transient.py.
"""

from __future__ import annotations


class TransientError(Exception):
    """A failure that a later try of the same call may not meet."""


class TerminalError(Exception):
    """A failure that every try of the same call will meet: fix the cause, then run again."""


class StorageError(TerminalError):
    """A lake location that cannot be used (bad URL, unsupported scheme, a key outside the lake)."""


class SearchError(TerminalError):
    """A search request that cannot succeed as asked (bad owner id, a failed copy, ...)."""


class EmbedderError(TerminalError):
    """A sentence encoder that cannot be used, or vectors and thresholds made by another encoder."""


class SearchUnavailableError(SearchError, TransientError):
    """The search cluster could not be reached or kept moving under us: worth a later try."""
