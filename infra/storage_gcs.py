"""`gs://bucket/prefix` lake on Google Cloud Storage (or an emulator via STORAGE_EMULATOR_HOST).

Writes are atomic by construction: an object becomes visible only when its upload completes.
`create` uses the generation precondition `if_generation_match=0`, so of two writers racing for
a key exactly one wins (GCS answers 412 to the other).
"""

from __future__ import annotations

import builtins
import contextlib
import os
import tempfile
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

from infra.errors import StorageError


class GcsStorage:
    """Objects under `gs://{bucket}/{prefix}`."""

    def __init__(self, bucket: str, prefix: str, url: str) -> None:
        """Store under `prefix` in `bucket`; `url` is how the lake was named."""
        if not bucket:
            raise StorageError(f"invalid lake URL {url!r}: no bucket")
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.url = url

    @cached_property
    def _bucket(self) -> Any:
        from google.cloud import storage

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
            client = storage.Client(credentials=credentials, project="rememberme-local")
        else:
            client = storage.Client()
        return client.bucket(self.bucket_name)

    def _name(self, key: str) -> str:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise StorageError(f"invalid object key {key!r}")
        return "/".join([self.prefix, *parts]) if self.prefix else "/".join(parts)

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        return bool(self._bucket.blob(self._name(key)).exists())

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        """Spool locally, upload once the block exits cleanly (nothing visible before)."""
        name = self._name(key)
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as spool:
            yield spool  # type: ignore[misc]
            spool.seek(0)
            self._bucket.blob(name).upload_from_file(spool, rewind=True)

    def put_file(self, key: str, source: Path) -> None:
        """Upload a local file."""
        self._bucket.blob(self._name(key)).upload_from_filename(str(source))

    def create(self, key: str, data: bytes) -> bool:
        """Upload only if no object exists under `key` (generation precondition 0)."""
        from google.api_core.exceptions import PreconditionFailed

        try:
            self._bucket.blob(self._name(key)).upload_from_string(data, if_generation_match=0)
        except PreconditionFailed:
            return False
        return True

    def read_bytes(self, key: str) -> bytes:
        """The whole object under `key`."""
        from google.api_core.exceptions import NotFound

        try:
            data: bytes = self._bucket.blob(self._name(key)).download_as_bytes()
        except NotFound:
            raise FileNotFoundError(self.uri(key)) from None
        return data

    def list(self, prefix: str) -> list[str]:
        """Keys under the folder `prefix`, sorted."""
        root = f"{self.prefix}/" if self.prefix else ""
        full = self._name(prefix) + "/" if prefix.strip("/") else root
        start = len(self.prefix) + 1 if self.prefix else 0
        return sorted(b.name[start:] for b in self._bucket.client.list_blobs(self._bucket, prefix=full))

    def debris(self, prefix: str) -> builtins.list[str]:
        """None: an upload appears whole or not at all (no temp objects)."""
        return []

    def read_versioned(self, key: str) -> tuple[bytes | None, str]:
        """The object and its generation ("0" when absent: a precondition that it still is)."""
        from google.api_core.exceptions import NotFound

        blob = self._bucket.blob(self._name(key))
        try:
            data: bytes = blob.download_as_bytes()
        except NotFound:
            return None, "0"
        return data, str(blob.generation)

    def replace_if(self, key: str, data: bytes, token: str) -> bool:
        """Upload with `if_generation_match`: GCS refuses it if anyone wrote in between."""
        from google.api_core.exceptions import PreconditionFailed

        try:
            self._bucket.blob(self._name(key)).upload_from_string(data, if_generation_match=int(token))
        except PreconditionFailed:
            return False
        return True

    def delete(self, key: str) -> bool:
        """Remove the object under `key`; False if there was none."""
        from google.api_core.exceptions import NotFound

        try:
            self._bucket.blob(self._name(key)).delete()
        except NotFound:
            return False
        return True

    def delete_if(self, key: str, token: str) -> bool:
        """Delete with `if_generation_match`: GCS refuses it if anyone wrote in between."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        try:
            self._bucket.blob(self._name(key)).delete(if_generation_match=int(token))
        except (NotFound, PreconditionFailed):
            return False
        return True

    def uri(self, key: str) -> str:
        """The gs:// URL of `key`."""
        return f"gs://{self.bucket_name}/{self._name(key)}"

    def key(self, uri: str) -> str:
        """The key of a gs:// URL under this lake's bucket and prefix."""
        base = f"gs://{self.bucket_name}/" + (f"{self.prefix}/" if self.prefix else "")
        if not uri.startswith(base):
            raise StorageError(f"{uri} is not in the lake {self.url}")
        return uri[len(base) :]
