"""Versioned checkpoint registry: `models/{owner}/{persona}/{kind}/v{n}/` + `aliases.json`.

Publishing goes through the one versioned-write primitive (infra/versions.py): the number is
reserved by exclusive create, the files written, the manifest created last; two publishers racing
get two numbers, never each other's files, and published versions are never rewritten. Aliases
(`latest`, `production`) live in one small JSON moved by compare-and-swap (atomic rename under a
lock locally, `if_generation_match` on GCS), so a rollback is a pointer move and concurrent moves
never lose one another. Each alias keeps its own stack of the versions it left: rollback walks
that stack back. Loading checks every file's sha256.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.errors import TerminalError, TransientError
from infra.leases import check_fences
from infra.storage import Storage
from infra.version import CODE_VERSION
from infra.versions import MANIFEST, RESERVED, VersionedStore, VersionError

KINDS = ("text", "voice", "base")
#: `models/{owner}/{persona}/{kind}/v{n}/manifest.json`: one published version.
_VERSION_KEY = re.compile(
    r"^models/(?P<owner>[^/]+)/(?P<persona>[^/]+)/(?P<kind>[^/]+)/v(?P<version>\d+)/manifest\.json$"
)
_STACK = 100  # versions each alias remembers for rollback


class RegistryError(TerminalError):
    """A registry request that cannot be served (unknown persona/version, tampered file, ...)."""


class RegistryBusyError(RegistryError, TransientError):
    """Alias moves kept colliding with concurrent ones: worth a later try (retries ask first)."""


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
        return VersionedStore(self.storage, self.prefix(owner_id, persona, kind)).versions()

    def manifest(self, owner_id: str, persona: str, kind: str, version: int) -> dict[str, Any]:
        """The manifest of one version."""
        try:
            return VersionedStore(self.storage, self.prefix(owner_id, persona, kind)).manifest(version)
        except VersionError:
            raise RegistryError(f"{owner_id}/{persona}/{kind} has no version {version}") from None

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
        """Store a new immutable version (infra/versions.py) and move `latest` to it; returns its manifest."""
        full = VersionedStore(self.storage, self.prefix(owner_id, persona, kind)).write(
            files,
            {
                **manifest,
                "owner_id": owner_id,
                "persona": persona,
                "kind": kind,
                "created_at": datetime.now(UTC).isoformat(),
                "code_version": CODE_VERSION,
            },
        )
        self.set_alias(owner_id, persona, kind, "latest", int(full["version"]))
        return full

    def personas(self, kind: str) -> list[tuple[str, str]]:
        """(owner, persona) of every persona with a published version of `kind`, any owner."""
        found = set()
        for key in self.storage.list("models/"):
            match = _VERSION_KEY.match(key)
            if match and match["kind"] == kind:
                found.add((match["owner"], match["persona"]))
        return sorted(found)

    def productions(self, kind: str) -> list[dict[str, Any]]:
        """The manifest of every persona's production version of `kind`, any owner (files not read)."""
        out = []
        for owner, persona in self.personas(kind):
            try:
                out.append(
                    self.manifest(owner, persona, kind, self.resolve(owner, persona, kind, "production"))
                )
            except RegistryError:
                continue  # no production (only candidates), or forgotten meanwhile
        return out

    def aliases(self, owner_id: str, persona: str, kind: str) -> dict[str, int]:
        """Alias -> version."""
        data, _ = self.storage.read_versioned(f"{self.prefix(owner_id, persona, kind)}/aliases.json")
        return {k: int(v) for k, v in json.loads(data).items() if not k.startswith("_")} if data else {}

    def _move(
        self, owner_id: str, persona: str, kind: str, change: Callable[[_Pointers], dict[str, int] | None]
    ) -> dict[str, int]:
        """Apply `change` to the pointers by compare-and-swap, retried from a fresh read when they moved.

        `change` edits the pointers in place and returns None, or returns the answer to give without
        writing anything.
        """
        key = f"{self.prefix(owner_id, persona, kind)}/aliases.json"
        for _ in range(50):
            data, token = self.storage.read_versioned(key)
            pointers = _Pointers.parse(data)
            unchanged = change(pointers)
            if unchanged is not None:
                return unchanged
            check_fences()  # no alias moves for a holder whose lock was taken over
            if self.storage.replace_if(key, pointers.dump(), token):
                return dict(pointers.current)
        raise RegistryBusyError(f"{key}: too many concurrent alias moves, try again")

    def set_alias(self, owner_id: str, persona: str, kind: str, alias: str, version: int) -> dict[str, int]:
        """Point `alias` at `version`; the version it leaves goes on that alias's own rollback stack."""
        if version not in self.versions(owner_id, persona, kind):
            raise RegistryError(f"{owner_id}/{persona}/{kind} has no version {version}")

        def change(pointers: _Pointers) -> dict[str, int] | None:
            if alias == "latest" and pointers.current.get("latest", 0) > version:
                return dict(pointers.current)  # latest never moves backwards
            pointers.point(alias, version, push=True)
            return None

        return self._move(owner_id, persona, kind, change)

    def rollback(self, owner_id: str, persona: str, kind: str, alias: str = "production") -> int:
        """Move `alias` back to the version it pointed at before its current one (twice: two back).

        Each alias keeps its own stack of the versions it left, so publishing candidates (which move
        `latest`) never pushes production's past out, and rolling back never bounces forward.
        """
        moved: list[int] = []

        def change(pointers: _Pointers) -> dict[str, int] | None:
            moved.clear()
            stack = pointers.previous.get(alias, [])
            if alias not in pointers.current or not stack:
                raise RegistryError(
                    f"{owner_id}/{persona}/{kind}: {alias} has no earlier version to roll back to"
                )
            moved.append(stack[-1])
            pointers.previous[alias] = stack[:-1]
            pointers.point(alias, stack[-1], push=False)
            return None

        self._move(owner_id, persona, kind, change)
        return moved[0]

    def retire(self, owner_id: str, persona: str, kind: str, version: int) -> int:
        """Delete a version's files for good (forget); returns how many objects went.

        The aliases stop naming it first, so no reader is pointed at a version being deleted (no
        rollback stack keeps it): `production` moves back to the newest version left that it
        pointed to before, else to the newest that passed the promotion gate, else goes (a
        candidate the gate refused never serves); other aliases move to the newest version left.
        The manifest goes before the files. The reservation stays behind, empty of data, so the
        number is never handed out again (a manifest elsewhere that names "base v3" keeps meaning
        the retired one).
        """
        prefix = self.prefix(owner_id, persona, kind)
        left = [v for v in self.versions(owner_id, persona, kind) if v != version]

        def change(pointers: _Pointers) -> dict[str, int] | None:
            served = [v for v in reversed(pointers.previous.get("production", [])) if v in left]
            gated = [v for v in reversed(left) if self._passed_gate(owner_id, persona, kind, v)]
            production = next(iter(served + gated), None)
            pointers.forget_version(version, left[-1] if left else None, {"production": production})
            return None

        if self.storage.exists(f"{prefix}/aliases.json"):
            self._move(owner_id, persona, kind, change)
        deleted = int(self.storage.delete(f"{prefix}/v{version}/{MANIFEST}"))
        # The reservation stays as a retired one (no fencing token): no writer ever takes it over.
        with self.storage.open_write(f"{prefix}/v{version}/{RESERVED}") as handle:
            handle.write(json.dumps({"retired": datetime.now(UTC).isoformat()}).encode())
        for name in self.storage.list(f"{prefix}/v{version}/"):
            if not name.endswith(f"/{RESERVED}"):
                deleted += int(self.storage.delete(name))
        return deleted

    def _passed_gate(self, owner_id: str, persona: str, kind: str, version: int) -> bool:
        """Whether a version may serve as production: its promotion verdict was yes (or it had none)."""
        try:
            promotion = self.manifest(owner_id, persona, kind, version).get("promotion")
        except RegistryError:  # half deleted (a concurrent forget): it serves nobody
            return False
        return not isinstance(promotion, dict) or bool(promotion.get("promote", True))

    def history(self, owner_id: str, persona: str, kind: str) -> list[dict[str, Any]]:
        """Alias moves, oldest first (the last 50)."""
        data, _ = self.storage.read_versioned(f"{self.prefix(owner_id, persona, kind)}/aliases.json")
        return _Pointers.parse(data).history

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
        if ref is None and name == "latest" and not self._passed_gate(owner_id, persona, kind, aliases[name]):
            raise RegistryError(  # never serve what the gate refused, even when it is all there is
                f"no {kind} model of {owner_id}/{persona} passed its gate yet "
                f"(`rememberme models show --kind {kind} --version {aliases[name]}` says why)"
            )
        return aliases[name]

    def load(self, owner_id: str, persona: str, kind: str, ref: str | int | None = None) -> Checkpoint:
        """Every file of a version, verified against the manifest's sha256."""
        version = self.resolve(owner_id, persona, kind, ref)
        manifest = self.manifest(owner_id, persona, kind, version)
        store = VersionedStore(self.storage, self.prefix(owner_id, persona, kind))
        try:
            files = {name: store.read(version, name, manifest) for name in manifest["files"]}
        except VersionError as exc:
            raise RegistryError(str(exc)) from None
        return Checkpoint(manifest, files)


@dataclass
class _Pointers:
    """The content of `aliases.json`: where each alias points, what it left, and the move log."""

    current: dict[str, int]
    previous: dict[str, list[int]]
    history: list[dict[str, Any]]

    @classmethod
    def parse(cls, data: bytes | None) -> _Pointers:
        raw: dict[str, Any] = json.loads(data) if data else {}
        history = list(raw.get("_history", []))
        current = {k: int(v) for k, v in raw.items() if not k.startswith("_")}
        if "_previous" in raw:
            previous = {a: [int(v) for v in vs] for a, vs in raw["_previous"].items()}
        else:  # written before aliases kept their own stacks: rebuild them from the move log
            previous = {}
            for alias in current:
                stack: list[int] = []
                for move in history:
                    if move["alias"] == alias and (not stack or stack[-1] != move["version"]):
                        stack.append(int(move["version"]))
                previous[alias] = stack[:-1] if stack and stack[-1] == current[alias] else stack
        return cls(current, previous, history)

    def point(self, alias: str, version: int, push: bool) -> None:
        old = self.current.get(alias)
        if push and old is not None and old != version:
            self.previous[alias] = [*self.previous.get(alias, []), old][-_STACK:]
        self.current[alias] = version
        self.history = [
            *self.history,
            {"alias": alias, "version": version, "at": datetime.now(UTC).isoformat()},
        ][-50:]

    def forget_version(
        self, version: int, fallback: int | None, fallbacks: dict[str, int | None] | None = None
    ) -> None:
        self.history = [m for m in self.history if m["version"] != version]
        self.previous = {a: [v for v in vs if v != version] for a, vs in self.previous.items()}
        for alias, pointed in list(self.current.items()):
            if pointed == version:
                target = (fallbacks or {}).get(alias, fallback)
                if target is None:
                    del self.current[alias]
                else:
                    self.current[alias] = target
                    self.previous[alias] = [v for v in self.previous.get(alias, []) if v != target]

    def dump(self) -> bytes:
        return json.dumps(
            {**self.current, "_previous": self.previous, "_history": self.history}, indent=1
        ).encode()
