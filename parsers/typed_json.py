"""Typed JSON decoding (msgspec) of the JSON exports, with the plain reader as the way out.

Telegram and Messenger exports are decoded straight into typed structs (only the fields a row
needs, the rest skipped without being built). A document outside that shape raises `ShapeError`,
and the caller reads it the plain `json.loads` way, which defines the behaviour.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

import msgspec

from parsers.arrays import is_utf8

T = TypeVar("T")


class ShapeError(Exception):
    """The document is outside the typed shape: read it the plain way."""


def decode(decoder: msgspec.json.Decoder[Any], data: bytes) -> Any:
    """The typed document; `ShapeError` where `json.loads` would not read the bytes the same.

    `json.loads` decodes the whole file first, while msgspec does not check the strings it skips:
    the UTF-8 check is made here over all of it, on another core while msgspec decodes (Arrow's
    check lets go of the GIL), unless the bytes are ASCII.
    """
    if data.isascii():
        return _typed(decoder, data)
    valid: list[bool] = []
    checker = threading.Thread(target=lambda: valid.append(is_utf8(data)), name="utf8-check", daemon=True)
    checker.start()
    try:
        found = _typed(decoder, data)
    finally:
        checker.join()
    if not valid or not valid[0]:
        raise ShapeError
    return found


def _typed(decoder: msgspec.json.Decoder[Any], data: bytes) -> Any:
    """The decoded document, a refusal raised as `ShapeError`."""
    try:
        return decoder.decode(data)
    except msgspec.DecodeError:
        raise ShapeError from None
