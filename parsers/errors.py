"""Errors a user can act on. Each renders as one line naming the file and the cause."""

from __future__ import annotations


class InputError(Exception):
    """Bad input (unknown format, binary file, wrong encoding, unsafe archive, ...).

    Terminal: retrying the same input gives the same answer.
    """

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = path
        self.cause = cause
