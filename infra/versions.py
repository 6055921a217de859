"""One versioned-write primitive for everything the pipeline versions (datasets, voice datasets, models).

A version of `{base}` lives in `{base}/v{n}/`. Writing one:
1. reserve the number: exclusive create of `v{n}/.reserved` (the next free one wins; two writers
   racing get two numbers, never each other's folder);
2. write the files;
3. create `v{n}/manifest.json` exclusively, listing every file's sha256 and size.

A version exists once its manifest does; a crash before that leaves a reservation and orphan files
that no reader trusts. Readers go through `read`, which checks the bytes against the manifest, so a
torn, overwritten or tampered file is an error, never silently served.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from infra.errors import TerminalError
from infra.faults import fault_point
from infra.leases import check_fences, fence_tokens
from infra.storage import Storage

MANIFEST = "manifest.json"
RESERVED = ".reserved"
_MANIFEST_KEY = re.compile(r"/v(\d+)/manifest\.json$")
_RESERVED_KEY = re.compile(r"/v(\d+)/\.reserved$")
_FILE_KEY = re.compile(r"^(?P<base>.+)/v(?P<version>\d+)/(?P<name>[^/]+)$")


class VersionError(TerminalError):
    """A version that is missing, unfinished or whose files do not match its manifest."""


def file_digest(data: bytes) -> dict[str, Any]:
    """What a manifest records of one file."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


class VersionedStore:
    """The versions of one thing (`base`, e.g. `datasets/{owner}/{persona}`) in a lake."""

    def __init__(self, storage: Storage, base: str) -> None:
        """Versions live under `{base}/v{n}/` in `storage`."""
        self.storage = storage
        self.base = base.rstrip("/")

    def versions(self) -> list[int]:
        """Published versions (those with a manifest), ascending."""
        keys = self.storage.list(f"{self.base}/")
        return sorted(int(m.group(1)) for k in keys if (m := _MANIFEST_KEY.search(k)))

    def manifest(self, version: int) -> dict[str, Any]:
        """The manifest of one published version."""
        try:
            data = self.storage.read_bytes(f"{self.base}/v{version}/{MANIFEST}")
        except FileNotFoundError:
            raise VersionError(f"{self.base} has no version {version}") from None
        manifest: dict[str, Any] = json.loads(data)
        return manifest

    def latest(self) -> dict[str, Any] | None:
        """The newest published version's manifest (None when there is none)."""
        versions = self.versions()
        return self.manifest(versions[-1]) if versions else None

    def reserve(self) -> int:
        """Claim the next free version number (exclusive create; concurrent callers get distinct ones).

        A number reserved by a writer that died before its manifest is taken over by the writer
        that holds the same lock after it (a larger fencing token for that lock, infra/leases.py):
        the dead writer can no longer publish it, so a re-run after a kill publishes the number a
        run that was never killed would have. Without a lock nothing is taken over.
        """
        keys = self.storage.list(f"{self.base}/")
        published = {int(m.group(1)) for k in keys if (m := _MANIFEST_KEY.search(k))}
        reserved = {int(m.group(1)) for k in keys if (m := _RESERVED_KEY.search(k))}
        tokens = fence_tokens()
        claim = json.dumps(
            {"claim": uuid.uuid4().hex, "at": datetime.now(UTC).isoformat(), "fence": tokens}
        ).encode()
        for version in sorted(reserved - published):
            if tokens and self._take_over(version, tokens, claim):
                return version
        version = max(published | reserved, default=0) + 1
        while not self.storage.create(f"{self.base}/v{version}/{RESERVED}", claim):
            version += 1  # another writer holds this number
        return version

    def _take_over(self, version: int, tokens: dict[str, int], claim: bytes) -> bool:
        """Claim an unpublished number whose writer held one of our locks at an older generation."""
        key = f"{self.base}/v{version}/{RESERVED}"
        data, token = self.storage.read_versioned(key)
        try:
            theirs = json.loads(data or b"{}").get("fence") or {}
        except ValueError:
            return False
        superseded = any(name in theirs and int(theirs[name]) < tokens[name] for name in tokens)
        if not superseded or not self.storage.replace_if(key, claim, token):
            return False  # retired (no fence), another lock's, or a live writer of ours
        prefix = f"{self.base}/v{version}/"
        for stale in self.storage.list(prefix) + self.storage.debris(prefix):
            if not stale.endswith(f"/{RESERVED}"):
                self.storage.delete(stale)
        return True

    def write(self, files: dict[str, bytes], manifest: dict[str, Any]) -> dict[str, Any]:
        """Publish a new version: reserve, write `files`, then the manifest (with `version`, `files`).

        Returns the manifest as stored.
        """
        version = self.reserve()
        prefix = f"{self.base}/v{version}"
        for name, data in files.items():
            if "/" in name or name in (MANIFEST, RESERVED):
                raise VersionError(f"{name!r} cannot be a file of a version")
            with self.storage.open_write(f"{prefix}/{name}") as handle:
                handle.write(data)
        fault_point("versions.files_written")
        check_fences()  # a holder whose persona lock was taken over publishes nothing
        full = {**manifest, "version": version, "files": {n: file_digest(d) for n, d in files.items()}}
        payload = json.dumps(full, ensure_ascii=False, indent=1, default=str).encode()
        if not self.storage.create(f"{prefix}/{MANIFEST}", payload):
            raise VersionError(f"{prefix} was published by another writer (its reservation was broken)")
        return full

    def read(self, version: int, name: str, manifest: dict[str, Any] | None = None) -> bytes:
        """One file of a published version, checked against the manifest's sha256."""
        manifest = manifest if manifest is not None else self.manifest(version)
        meta = (manifest.get("files") or {}).get(name)
        key = f"{self.base}/v{version}/{name}"
        if meta is None:
            raise VersionError(f"{self.storage.uri(key)} is not listed in its version's manifest")
        try:
            data = self.storage.read_bytes(key)
        except FileNotFoundError:
            raise VersionError(f"{self.storage.uri(key)} is missing (the version is incomplete)") from None
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise VersionError(
                f"{self.storage.uri(key)}: sha256 does not match the manifest (overwritten, torn or tampered)"
            )
        return data


def read_verified(storage: Storage, key: str) -> bytes:
    """The bytes of `{base}/v{n}/{name}`, trusted only if that version's manifest lists them."""
    match = _FILE_KEY.match(key)
    if match is None:
        raise VersionError(f"{key!r} is not a file of a version (expected …/v<n>/<name>)")
    store = VersionedStore(storage, match["base"])
    return store.read(int(match["version"]), match["name"])
