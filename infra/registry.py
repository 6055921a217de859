"""Versioned checkpoint registry: `models/{owner}/{persona}/{kind}/v{n}/` + `aliases.json`.

Publishing reserves a version number first (exclusive create of `v{n}/.reserved`), writes the
files, then creates `manifest.json` exclusively: a version exists once its manifest does, and two
publishers racing for a number get two numbers, never each other's files. Published versions are
never rewritten. Aliases (`latest`, `production`) live in one small JSON moved by compare-and-swap
(atomic rename under a lock locally, `if_generation_match` on GCS), so a rollback is a pointer
move and concurrent moves never lose one another. Loading checks every file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.storage import Storage
from infra.version import CODE_VERSION

KINDS = ("text", "voice", "base")
_VERSION = re.compile(r"/v(\d+)/manifest\.json$")


class RegistryError(Exception):
    """A registry request that cannot be served (unknown persona/version, tampered file, ...)."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, verified version: its manifest and file bytes."""

    manifest: dict[str, Any]
    files: dict[str, bytes]

    @property
    def version(self) -> int:
        """The version number."""
        return int(self.manifest["version"])


class Registry:
    """Checkpoints of every owner, persona and kind in one lake."""

    def __init__(self, storage: Storage) -> None:
        """Use `storage` as the lake holding `models/`."""
        self.storage = storage

    @staticmethod
    def prefix(owner_id: str, persona: str, kind: str) -> str:
        """The folder of one persona's checkpoints of one kind."""
        if kind not in KINDS:
            raise RegistryError(f"unknown checkpoint kind {kind!r} (one of {', '.join(KINDS)})")
        return f"models/{owner_id}/{persona}/{kind}"

    def versions(self, owner_id: str, persona: str, kind: str) -> list[int]:
        """Published versions, ascending."""
        keys = self.storage.list(self.prefix(owner_id, persona, kind) + "/")
        return sorted(int(m.group(1)) for k in keys if (m := _VERSION.search(k)))

    def manifest(self, owner_id: str, persona: str, kind: str, version: int) -> dict[str, Any]:
        """The manifest of one version."""
        key = f"{self.prefix(owner_id, persona, kind)}/v{version}/manifest.json"
        if not self.storage.exists(key):
            raise RegistryError(f"{owner_id}/{persona}/{kind} has no version {version}")
        data: dict[str, Any] = json.loads(self.storage.read_bytes(key))
        return data

    def trained_on(self, owner_id: str, persona: str, kind: str, dataset_version: int) -> bool:
        """Whether the newest published version learned from `dataset_version` (or a later one).

        Recycling asks before it skips training a dataset version that already existed: a pass
        that built the dataset but failed to train it must train it when retried.
        """
        versions = self.versions(owner_id, persona, kind)
        if not versions:
            return False
        trained = self.manifest(owner_id, persona, kind, versions[-1]).get("dataset") or {}
        return int(trained.get("version", 0)) >= dataset_version

    def publish(
        self, owner_id: str, persona: str, kind: str, files: dict[str, bytes], manifest: dict[str, Any]
    ) -> dict[str, Any]:
        """Store a new immutable version and move `latest` to it; returns its manifest."""
        prefix = self.prefix(owner_id, persona, kind)
        claim = uuid.uuid4().hex
        version = (self.versions(owner_id, persona, kind) or [0])[-1] + 1
        while not self.storage.create(f"{prefix}/v{version}/.reserved", claim.encode()):
            version += 1  # another publisher holds this number
        for name, data in files.items():
            with self.storage.open_write(f"{prefix}/v{version}/{name}") as handle:
                handle.write(data)
        full = {
            **manifest,
            "owner_id": owner_id,
            "persona": persona,
            "kind": kind,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(),
            "code_version": CODE_VERSION,
            "files": {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()},
        }
        payload = json.dumps(full, ensure_ascii=False, indent=1, default=str).encode()
        if not self.storage.create(f"{prefix}/v{version}/manifest.json", payload):
            raise RegistryError(f"{prefix}/v{version} was published by someone else (reservation broken)")
        self.set_alias(owner_id, persona, kind, "latest", version)
        return full

    def aliases(self, owner_id: str, persona: str, kind: str) -> dict[str, int]:
        """Alias -> version."""
        data, _ = self.storage.read_versioned(f"{self.prefix(owner_id, persona, kind)}/aliases.json")
        return {k: int(v) for k, v in json.loads(data).items() if not k.startswith("_")} if data else {}

    def set_alias(self, owner_id: str, persona: str, kind: str, alias: str, version: int) -> dict[str, int]:
        """Point `alias` at `version` (compare-and-swap; retried from a fresh read when it moved)."""
        if version not in self.versions(owner_id, persona, kind):
            raise RegistryError(f"{owner_id}/{persona}/{kind} has no version {version}")
        key = f"{self.prefix(owner_id, persona, kind)}/aliases.json"
        for _ in range(50):
            data, token = self.storage.read_versioned(key)
            current = json.loads(data) if data else {}
            history = current.pop("_history", [])
            if alias == "latest" and current.get("latest", 0) > version:
                return {k: int(v) for k, v in current.items()}  # latest never moves backwards
            current[alias] = version
            history = [*history, {"alias": alias, "version": version, "at": datetime.now(UTC).isoformat()}][
                -50:
            ]
            payload = json.dumps({**current, "_history": history}, indent=1).encode()
            if self.storage.replace_if(key, payload, token):
                return {k: int(v) for k, v in current.items()}
        raise RegistryError(f"{key}: too many concurrent alias moves, try again")

    def retire(self, owner_id: str, persona: str, kind: str, version: int) -> int:
        """Delete a version's files for good (forget); returns how many objects went.

        The aliases stop naming it first (each moves to the newest version left, or goes), so no
        reader is pointed at a version being deleted; the manifest goes before the files. The
        reservation stays behind, empty of data, so the number is never handed out again (a
        manifest elsewhere that names "base v3" keeps meaning the retired one).
        """
        prefix = self.prefix(owner_id, persona, kind)
        left = [v for v in self.versions(owner_id, persona, kind) if v != version]
        key = f"{prefix}/aliases.json"
        for _ in range(50):
            data, token = self.storage.read_versioned(key)
            if not data:
                break
            current = json.loads(data)
            history = [m for m in current.pop("_history", []) if m["version"] != version]
            moved = {a: (v if v != version else (left[-1] if left else None)) for a, v in current.items()}
            kept = {a: v for a, v in moved.items() if v is not None}
            if self.storage.replace_if(
                key, json.dumps({**kept, "_history": history}, indent=1).encode(), token
            ):
                break
        deleted = int(self.storage.delete(f"{prefix}/v{version}/manifest.json"))
        for name in self.storage.list(f"{prefix}/v{version}/"):
            if not name.endswith("/.reserved"):
                deleted += int(self.storage.delete(name))
        return deleted

    def history(self, owner_id: str, persona: str, kind: str) -> list[dict[str, Any]]:
        """Alias moves, oldest first (the last 50)."""
        data, _ = self.storage.read_versioned(f"{self.prefix(owner_id, persona, kind)}/aliases.json")
        moves: list[dict[str, Any]] = json.loads(data).get("_history", []) if data else []
        return moves

    def rollback(self, owner_id: str, persona: str, kind: str, alias: str = "production") -> int:
        """Move `alias` back to the version it pointed at before its current one."""
        moves = [m for m in self.history(owner_id, persona, kind) if m["alias"] == alias]
        current = self.aliases(owner_id, persona, kind).get(alias)
        previous = next((m["version"] for m in reversed(moves) if m["version"] != current), None)
        if current is None or previous is None:
            raise RegistryError(
                f"{owner_id}/{persona}/{kind}: {alias} has no earlier version to roll back to"
            )
        self.set_alias(owner_id, persona, kind, alias, previous)
        return int(previous)

    def resolve(self, owner_id: str, persona: str, kind: str, ref: str | int | None = None) -> int:
        """A version number from a number, an alias, or None (production, else latest)."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            return int(ref)
        aliases = self.aliases(owner_id, persona, kind)
        name = ref or ("production" if "production" in aliases else "latest")
        if name not in aliases:
            raise RegistryError(
                f"no published {kind} model for {owner_id}/{persona} (alias {name!r} not set)"
            )
        return aliases[name]

    def load(self, owner_id: str, persona: str, kind: str, ref: str | int | None = None) -> Checkpoint:
        """Every file of a version, verified against the manifest's sha256."""
        version = self.resolve(owner_id, persona, kind, ref)
        manifest = self.manifest(owner_id, persona, kind, version)
        prefix = f"{self.prefix(owner_id, persona, kind)}/v{version}"
        files = {}
        for name, meta in manifest["files"].items():
            data = self.storage.read_bytes(f"{prefix}/{name}")
            if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                where = self.storage.uri(f"{prefix}/{name}")
                raise RegistryError(f"{where}: sha256 does not match the manifest (tampered or corrupt)")
            files[name] = data
        return Checkpoint(manifest, files)
