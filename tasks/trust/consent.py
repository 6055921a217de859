"""Consent decides what trains what: who may teach the shared text and voice bases.

A persona always trains on its own owner's data. The shared bases, which every family's personas
start from, learn only from:

- platform subjects whose consent has `base_training: true` (the platform contract; off unless
  the subject granted it), their own words only;
- KakaoTalk uploads and uploaded recordings of an owner who opted in (`rememberme consent base
  --owner O --grant`; off by default), stored as `consent/base/{owner}.json`.

Both are read at the moment a base is trained; a revoked consent or opt-in, or a forgotten owner,
leaves the next base without that data (the base manifest's lineage says what each base learned
from).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.storage import Storage
from parsers.platform.events import Consent
from schemas.names import validate_owner
from tasks.ingest.platform import active_consents, load_consents
from tasks.lifecycle.forget import load_tombstones

OPT_IN_PREFIX = "consent/base/"


def _opt_in_key(owner_id: str) -> str:
    return f"{OPT_IN_PREFIX}{owner_id}.json"


def set_base_opt_in(storage: Storage, owner_id: str, allowed: bool) -> dict[str, Any]:
    """Record an owner's choice for their uploads (KakaoTalk exports, recordings) and the bases."""
    owner_id = validate_owner(owner_id)
    record = {"owner_id": owner_id, "base_training": allowed, "at": datetime.now(UTC).isoformat()}
    with storage.open_write(_opt_in_key(owner_id)) as handle:
        handle.write(json.dumps(record, ensure_ascii=False).encode())
    return record


def base_opt_in(storage: Storage, owner_id: str) -> bool:
    """Whether the owner's uploads may train the shared bases (false unless they opted in)."""
    key = _opt_in_key(owner_id)
    if not storage.exists(key):
        return False
    return bool(json.loads(storage.read_bytes(key)).get("base_training"))


@dataclass
class BaseConsents:
    """Who may teach the bases right now."""

    owners: set[str] = field(default_factory=set)  # owners whose own uploads may
    #: owner -> persona names (as spoken in that owner's lake) of subjects who may
    subjects: dict[str, set[str]] = field(default_factory=dict)
    consents: list[Consent] = field(default_factory=list)

    def allows_upload(self, owner_id: str) -> bool:
        """Whether this owner's uploads (KakaoTalk, recordings) may train a base."""
        return owner_id in self.owners

    def allows_subject(self, owner_id: str, persona: str) -> bool:
        """Whether this platform subject's words (in this owner's lake) may train a base."""
        return persona in self.subjects.get(owner_id, set())


def base_consents(storage: Storage) -> BaseConsents:
    """The platform consents with base training, and the owners who opted in, minus tombstones."""
    tombstones = load_tombstones(storage)
    consents, _ = load_consents(storage)
    out = BaseConsents()
    for consent in active_consents(consents, tombstones):
        if consent.base_training:
            out.subjects.setdefault(consent.owner_id, set()).add(consent.persona)
            out.consents.append(consent)
    forgotten_owners = {owner for owner, persona in tombstones if persona == "*"}
    for key in storage.list(OPT_IN_PREFIX):
        owner = key.removeprefix(OPT_IN_PREFIX).removesuffix(".json")
        if owner not in forgotten_owners and base_opt_in(storage, owner):
            out.owners.add(owner)
    return out
