"""Names a user types, as ids: owners (path prefixes) and personas (path-safe slugs).

Light on purpose (no pandas, no pyarrow): the one-shot CLI commands import it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Final

from parsers.errors import InputError

OWNER_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def is_owner_id(value: str) -> bool:
    """Whether `value` is an acceptable owner id."""
    return bool(OWNER_ID_PATTERN.match(value))


def nfc(text: str) -> str:
    """Unicode NFC with surrounding whitespace removed (for names typed by a user)."""
    return unicodedata.normalize("NFC", text).strip()


def slug(name: str) -> str:
    """A path-safe id for a persona name, one per name: letters (any script), digits, '_', '-', '.'.

    A name that is path-safe already is its own id (`엄마`), so existing lakes keep their paths.
    Any other name gets a short hash of the whole name after its readable part (`엄마❤️` ->
    `엄마~<hash>`, an emoji-only name -> `persona~<hash>`; `~` never occurs in a path-safe name):
    two names never share an id, so forgetting one can never delete the other's data or models.
    """
    name = nfc(name)
    cleaned = re.sub(r"[^\w.-]+", "-", name, flags=re.UNICODE).strip("-.")
    if cleaned == name and cleaned:
        return cleaned
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned or 'persona'}~{digest}"


def validate_owner(owner_id: str) -> str:
    """Owner ids become path prefixes; refuse anything that is not a plain token."""
    if not is_owner_id(owner_id):
        raise InputError(
            "--owner", f"invalid owner id {owner_id!r} (letters, digits, '_', '.', '-'; max 128)"
        )
    return owner_id
