"""One storage abstraction over lake URLs. Business code names keys, never schemes.

`file://` is implemented here (the local default), `gs://bucket/prefix` in infra/storage_gcs.py
(google-cloud-storage; tested against a GCS emulator). Writes are atomic: a reader never sees a
half-written object.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from infra.errors import StorageError

__all__ = ["LocalStorage", "Storage", "StorageError", "open_storage"]


class Storage(Protocol):
    """What the pipeline needs from a lake: keyed, atomic, immutable-friendly objects."""

    url: str

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        ...

    def open_write(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """Write an object atomically: it appears under `key` only when the block exits cleanly."""
        ...

    def put_file(self, key: str, source: Path) -> None:
        """Copy a local file to `key` atomically."""
        ...

    def create(self, key: str, data: bytes) -> bool:
        """Write `data` under `key` only if nothing is there yet (atomically); False if taken."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """The whole object under `key`."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix`, sorted."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the object under `key`; False if there was none."""
        ...

    def debris(self, prefix: str) -> builtins.list[str]:
        """Keys of what writes killed mid-way left under `prefix` (hidden temp files), sorted.

        `list` never shows them, so no reader trusts them; a forget deletes them with the rest.
        """
        ...

    def read_versioned(self, key: str) -> tuple[bytes | None, str]:
        """The object (None if absent) and a token naming this exact version of it."""
        ...

    def replace_if(self, key: str, data: bytes, token: str) -> bool:
        """Write `data` only if the object is still the version `token` named; False if it moved."""
        ...

    def delete_if(self, key: str, token: str) -> bool:
        """Delete the object only if it is still the version `token` named; False if it moved or is gone."""
        ...

    def uri(self, key: str) -> str:
        """The full URL of `key` (for manifests and summaries)."""
        ...

    def key(self, uri: str) -> str:
        """The key of a URL that `uri` produced; StorageError for a URL outside this lake."""
        ...


class LocalStorage:
    """`file://` lake: objects are files under a root folder; writes go through temp + rename."""

    def __init__(self, root: Path, url: str) -> None:
        """Store under `root`; `url` is how the lake was named (kept for display)."""
        self.root = root
        self.url = url

    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise StorageError(f"invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        return self._path(key).is_file()

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        """Write to a hidden temp file beside the target, then rename it into place."""
        target = self._path(key)
        temp = target.with_name(f".tmp-{uuid.uuid4().hex}-{target.name}")
        try:
            with _open_new(temp) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            temp.replace(target)
        finally:
            temp.unlink(missing_ok=True)

    def put_file(self, key: str, source: Path) -> None:
        """Copy a local file to `key` atomically."""
        with source.open("rb") as src, self.open_write(key) as dst:
            shutil.copyfileobj(src, dst, 4 * 1024 * 1024)

    def create(self, key: str, data: bytes) -> bool:
        """Write to a temp file, then hard-link it into place: link() fails if the key exists."""
        target = self._path(key)
        temp = target.with_name(f".tmp-{uuid.uuid4().hex}-{target.name}")
        try:
            with _open_new(temp) as handle:
                handle.write(data)
            os.link(temp, target)
        except FileExistsError:
            return False
        finally:
            temp.unlink(missing_ok=True)
        return True

    def read_bytes(self, key: str) -> bytes:
        """The whole object under `key`."""
        return self._path(key).read_bytes()

    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix` (temp files excluded), sorted."""
        base = self._path(prefix) if prefix.strip("/") else self.root
        if not base.exists():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith((".tmp-", ".lock-"))
        )

    def debris(self, prefix: str) -> builtins.list[str]:
        """Temp files of writes killed before their rename, under `prefix`."""
        base = self._path(prefix) if prefix.strip("/") else self.root
        if not base.exists():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob(".tmp-*") if p.is_file())

    def read_versioned(self, key: str) -> tuple[bytes | None, str]:
        """The object and the sha256 of its bytes ("absent" when there is none)."""
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None, "absent"
        return data, hashlib.sha256(data).hexdigest()

    def replace_if(self, key: str, data: bytes, token: str) -> bool:
        """Compare and swap under an exclusive lock file beside the object (one host's writers)."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.with_name(f".lock-{target.name}").open("a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self.read_versioned(key)[1] != token:
                    return False
                with self.open_write(key) as handle:
                    handle.write(data)
                return True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def delete(self, key: str) -> bool:
        """Remove the object under `key` (and folders left empty); False if there was none."""
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        # Its compare-and-swap lock file would keep the folder (named after a persona) alive.
        path.with_name(f".lock-{path.name}").unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()  # only succeeds when empty; a concurrent writer's folder stays
            except OSError:
                break
            parent = parent.parent
        return True

    def delete_if(self, key: str, token: str) -> bool:
        """Delete the object only if it is still the version `token` named (under the CAS lock)."""
        target = self._path(key)
        if not target.parent.exists():
            return False
        with target.with_name(f".lock-{target.name}").open("a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self.read_versioned(key)[1] != token:
                    return False
                return self.delete(key)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def uri(self, key: str) -> str:
        """The file:// URL of `key` (unescaped, for people to read)."""
        return f"file://{self._path(key).resolve()}"

    def key(self, uri: str) -> str:
        """The key of a file:// URL under this lake's root."""
        base = f"file://{self.root.resolve()}/"
        if not uri.startswith(base):
            raise StorageError(f"{uri} is not in the lake {self.url}")
        return uri[len(base) :]


def _open_new(path: Path) -> BinaryIO:
    """Open a new file for writing, making its folder; again if a `delete` removed the folder.

    `delete` removes folders it leaves empty; another process can do that between our `mkdir`
    and our `open` (two leases of one folder, one released as the other is taken).
    """
    for _ in range(20):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return path.open("wb")
        except FileNotFoundError:
            continue
    return path.open("wb")


def open_storage(url: str) -> Storage:
    """Open the lake named by `url` (`file://./data`, `file:///abs`, a plain path, `gs://b/p`)."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        if parsed.scheme == "":
            root = Path(url)
        elif parsed.netloc in ("", "localhost"):
            root = Path(parsed.path)
        else:
            # file://./data is not a standard URL but reads naturally: netloc "." + path "/data".
            root = Path(parsed.netloc + parsed.path)
        return LocalStorage(root, url)
    if parsed.scheme == "gs":
        from infra.storage_gcs import GcsStorage

        return GcsStorage(parsed.netloc, parsed.path, url)
    raise StorageError(f"unsupported lake URL {url!r}: use file:// or gs://")
