"""Typed JSON decoding (msgspec) of the JSON exports, with the plain reader as the way out.

Telegram and Messenger exports are decoded straight into typed structs (only the fields a row
needs, the rest skipped without being built). A document outside that shape raises `ShapeError`,
and the caller reads it the plain `json.loads` way, which defines the behaviour.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from parsers.arrays import is_utf8

T = TypeVar("T")


class ShapeError(Exception):
    """The document is outside the typed shape: read it the plain way."""


def decode(decoder: msgspec.json.Decoder[Any], data: bytes) -> Any:
    """The typed document; `ShapeError` where `json.loads` would not read the bytes the same.

    `json.loads` decodes the whole file first, while msgspec does not check the strings it skips:
    the UTF-8 check is made here over all of it.
    """
    if not is_utf8(data):
        raise ShapeError
    try:
        return decoder.decode(data)
    except msgspec.DecodeError:
        raise ShapeError from None
