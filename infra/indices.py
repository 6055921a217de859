"""Versioned indices behind an alias: create, migrate to a new mapping without a moment of empty search.

An alias (`rememberme-messages`, `rememberme-pairs`) always serves exactly one concrete index,
`{alias}-v{mapping version}` (plus `-e<hash>` when the vectors are not the bundled embedder's:
infra/text_features.py); every write and query names the alias, never the index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from infra.errors import EmbedderError, SearchError, SearchUnavailableError
from schemas.search import BUNDLED_EMBEDDER, VECTOR_DIMS, VectorSpace, message_index_body, vector_tag


def index_name(alias: str, version: int, space: VectorSpace | None = None) -> str:
    """The concrete index of a mapping version holding vectors of `space` (default: bundled)."""
    return f"{alias}-v{version}{vector_tag(space)}"


def has_nori(client: Elasticsearch) -> bool:
    """Whether the cluster has the analysis-nori plugin (asks the analyzer, not the plugin list)."""
    try:
        client.indices.analyze(tokenizer="nori_tokenizer", text="한국어")
    except ApiError:
        return False
    return True


def _create(
    client: Elasticsearch, name: str, body: dict[str, Any] | None = None, space: VectorSpace | None = None
) -> None:
    try:
        client.indices.create(index=name, **(body or message_index_body(has_nori(client), space)))
    except ApiError as exc:
        # Parallel indexers (recycling's mapped tasks) race to create the first index: one wins.
        if "already_exists" not in str(exc):
            raise


def aliased(client: Elasticsearch, alias: str) -> list[str]:
    """The indices `alias` points at now."""
    return sorted(client.indices.get_alias(name=alias)) if client.indices.exists_alias(name=alias) else []


def ensure_alias(
    client: Elasticsearch,
    alias: str,
    version: int,
    body: dict[str, Any] | None = None,
    rebuild: Callable[[str], int] | None = None,
    space: VectorSpace | None = None,
    switch: bool = False,
) -> str:
    """Make `alias` serve mapping `version` with vectors of `space`; returns the index.

    First use creates the index. When the alias serves an older mapping version, the new one is
    filled before the alias moves (`migrate`), so search never sees an empty index. `body`
    defaults to the message mapping (with nori where the cluster has it) sized for `space`.
    An index holding another embedder's vectors moves only when `switch` asks for it (an
    operator's `rememberme index --switch-embedder`): two processes configured differently would
    otherwise rebuild it back and forth, each dropping the other's vectors.
    """
    name = index_name(alias, version, space)
    current = aliased(client, alias)
    if current == [name]:
        return name
    tag = vector_tag(space)
    if not switch and any(_vector_tag(alias, c) != tag for c in current):
        check_embedder(client, alias, space or _Bundled())
    newer = [c for c in current if _mapping_version(alias, c) > version]
    if newer:  # a newer deployment already migrated (rolling upgrade): never move search back
        return newer[0]
    if current or any(g != name for g in generations(client, alias)):
        migrate(client, alias, version, body, rebuild, space)
        return name
    if not client.indices.exists(index=name):
        _create(client, name, body, space)
    _swap(client, alias, name)
    return name


def _mapping_version(alias: str, index: str) -> int:
    tail = index.removeprefix(f"{alias}-v").split("-")[0]
    return int(tail) if tail.isdigit() else 0


def _vector_tag(alias: str, index: str) -> str:
    tail = index.removeprefix(f"{alias}-v")
    return tail[tail.index("-") :] if "-" in tail else ""


def embedder_of(client: Elasticsearch, alias: str) -> str | None:
    """The embedder whose vectors the index behind `alias` holds (None: no index yet)."""
    current = aliased(client, alias)
    if not current:
        return None
    meta = client.indices.get_mapping(index=current[0])[current[0]]["mappings"].get("_meta") or {}
    return str(meta.get("embedder") or BUNDLED_EMBEDDER)


class _Bundled:
    """The bundled embedder's vector space (what an index created without one holds)."""

    name, dim = BUNDLED_EMBEDDER, VECTOR_DIMS


def check_embedder(client: Elasticsearch, alias: str, space: VectorSpace) -> None:
    """Raise when the index behind `alias` holds another embedder's vectors than `space`'s."""
    held = embedder_of(client, alias)
    if held is not None and held != space.name:
        raise EmbedderError(
            f"{alias}: the search index holds vectors of embedder {held}, this process embeds with "
            f"{space.name}; every process must share REMEMBERME_EMBEDDER_MODEL (to move the indices to "
            "this one: rememberme index --owner OWNER --switch-embedder)"
        )


def _swap(client: Elasticsearch, alias: str, target: str) -> None:
    """Point `alias` at `target` alone in one atomic alias update (retried if another swap won)."""
    for _ in range(5):
        current = aliased(client, alias)
        if current == [target]:
            return
        actions: list[dict[str, Any]] = [
            {"remove": {"index": old, "alias": alias}} for old in current if old != target
        ]
        actions.append({"add": {"index": target, "alias": alias}})
        try:
            client.indices.update_aliases(actions=actions)
            return
        except ApiError as exc:  # a concurrent migration moved it between our read and our swap
            if exc.meta.status != 404:
                raise
    raise SearchUnavailableError(f"could not move alias {alias} to {target}: it kept moving")


@dataclass
class Migration:
    """What a mapping migration did."""

    alias: str
    target: str
    old: list[str]
    documents: int
    seconds: float


def migrate(
    client: Elasticsearch,
    alias: str,
    version: int,
    body: dict[str, Any] | None = None,
    rebuild: Callable[[str], int] | None = None,
    space: VectorSpace | None = None,
) -> Migration:
    """Move `alias` to mapping `version` (vectors of `space`) without a moment of empty search.

    1. create the new index; 2. fill it: copy every document (`_reindex`, re-analysed under the
    new mapping; another embedder's vectors are left behind) or, when the new mapping needs fields
    the old documents lack, `rebuild(target)` from the lake; 3. swap the alias atomically; 4. copy
    what writers added to the old index meanwhile (create-only: nothing newer is overwritten);
    5. delete the old indices, so nothing forget cannot reach stays behind. Safe to run twice or
    concurrently (every step is idempotent; copies never overwrite what is already there).
    """
    started = time.perf_counter()
    target = index_name(alias, version, space)
    old = [g for g in generations(client, alias) if g != target]
    if not client.indices.exists(index=target):
        _create(client, target, body, space)
    tag = vector_tag(space)

    def copy(source: str, create_only: bool) -> int:
        keep = None if _vector_tag(alias, source) == tag else _text_fields(client, source)
        return _copy(client, source, target, create_only, keep)

    if rebuild is not None:
        documents = rebuild(target)
    else:
        # Create-only here too: a concurrent migration may have swapped already and writers put
        # newer documents (with vectors) into the target; an old copy never overwrites them.
        documents = sum(copy(source, create_only=True) for source in old)
    client.indices.refresh(index=target)
    _swap(client, alias, target)
    for source in old:
        if rebuild is None:
            documents += copy(source, create_only=True)
        client.indices.delete(index=source, ignore_unavailable=True)
    return Migration(alias, target, old, documents, time.perf_counter() - started)


def _text_fields(client: Elasticsearch, index: str) -> list[str]:
    """Every field of `index` but its vectors (what survives a change of embedder)."""
    if not client.indices.exists(index=index):
        return []
    properties = client.indices.get_mapping(index=index)[index]["mappings"].get("properties") or {}
    return sorted(k for k, v in properties.items() if v.get("type") != "dense_vector")


def _copy(
    client: Elasticsearch, source: str, target: str, create_only: bool, fields: list[str] | None = None
) -> int:
    """Copy every document of `source` into `target` (only `fields` of each, when given)."""
    if not client.indices.exists(index=source):
        return 0  # a concurrent migration finished first
    client.indices.refresh(index=source)  # the copy reads by search: make every write visible
    dest: dict[str, Any] = {"index": target, **({"op_type": "create"} if create_only else {})}
    origin: dict[str, Any] = {"index": source, **({"_source": fields} if fields is not None else {})}
    result = client.reindex(
        source=origin, dest=dest, conflicts="proceed", refresh=True, wait_for_completion=True
    )
    if result.get("failures"):
        first = result["failures"][0]
        raise SearchError(f"copying {source} to {target} failed: {first.get('cause', first)}")
    return int(result.get("created", 0)) + int(result.get("updated", 0))


def reindex_to(client: Elasticsearch, alias: str, version: int) -> str:
    """Move `alias` to a new mapping version by copying every document (see `migrate`)."""
    return migrate(client, alias, version).target


def generations(client: Elasticsearch, alias: str) -> list[str]:
    """Every concrete index of `alias`: the one it points at and any older mapping version left."""
    names = set(client.indices.get(index=f"{alias}-v*", ignore_unavailable=True, allow_no_indices=True))
    if client.indices.exists_alias(name=alias):
        names.update(client.indices.get_alias(name=alias))
    return sorted(names)
