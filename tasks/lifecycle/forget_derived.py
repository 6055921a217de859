"""Forget, second step: everything derived that learned from the forgotten subject.

Lineage decides, not guesswork:
- the same owner's other personas whose training pairs held the subject's words as context are
  rebuilt from the cleaned lake (a new dataset version), retrained, re-indexed, and every older
  dataset and model version of theirs is retired (deleted for good);
- a shared base (text or voice) whose manifest lineage names the owner's uploads or one of the
  subject's keys is retired from its aliases and deleted; the base is rebuilt from what consent
  still allows, and every persona (any owner) whose model was fine-tuned from a retired base is
  retrained on the rebuilt one, its tainted versions retired. What cannot be retrained now
  (too little data, a failure) is retired all the same and listed as owed in the receipt.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow.parquet as pq
from elasticsearch import Elasticsearch

from infra.faults import fault_point
from infra.registry import Registry
from infra.search import delete_documents
from infra.storage import Storage
from infra.text_features import Embedder
from infra.versions import VersionedStore
from parsers.errors import InputError
from schemas.names import slug
from schemas.search import MESSAGES_ALIAS, PAIRS_ALIAS
from tasks.datasets.build import DatasetOptions, build_dataset
from tasks.datasets.quality import QualityGateError
from tasks.lifecycle.forget import LakeForget, Subject, delete_prefix
from tasks.lifecycle.journal import ForgetJournal
from tasks.training.train import BASE_OWNER, BASE_PERSONA, ModelOptions
from tasks.voice.voice_model import VOICE_BASE

TEXT_BASE = (BASE_OWNER, BASE_PERSONA)


@dataclass
class DerivedForget:
    """What the derived step removed, rebuilt and could not rebuild (ids, never names)."""

    documents_deleted: int = 0
    retired: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    owed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def forget_search(client: Elasticsearch, subject: Subject, done: LakeForget) -> int:
    """Delete the subject's documents from both indices, every generation; returns how many."""
    if subject.whole_owner:
        deleted = delete_documents(client, MESSAGES_ALIAS, subject.owner_id)
        return deleted + delete_documents(client, PAIRS_ALIAS, subject.owner_id)
    deleted = delete_documents(client, MESSAGES_ALIAS, subject.owner_id, done.speakers)
    return deleted + delete_documents(client, PAIRS_ALIAS, subject.owner_id, persona_id=subject.persona_id)


def forget_derived(
    storage: Storage,
    client: Elasticsearch | None,
    subject: Subject,
    done: LakeForget,
    options: ModelOptions,
    embedder: Embedder | None = None,
    voice_steps: int = 300,
    journal: ForgetJournal | None = None,
) -> DerivedForget:
    """Rebuild or retire every derived object whose lineage includes the subject.

    What a killed run leaves owed (other personas to rebuild, bases to retrain) is in `journal`.
    """
    out = DerivedForget()
    journal = journal or ForgetJournal(storage, subject.owner_id, subject.key)
    if client is not None:
        out.documents_deleted = forget_search(client, subject, done)
        fault_point("forget.search")
    if not subject.whole_owner:
        _rebuild_same_owner(storage, client, subject, options, embedder, out, journal)
    # Owed before retiring: once retired, no base names the subject and a re-run would not rebuild.
    for base, kind in ((TEXT_BASE, "text"), (VOICE_BASE, "voice")):
        if any(lineage_names(Registry(storage).manifest(*base, "base", v), subject, done)
               for v in Registry(storage).versions(*base, "base")):  # fmt: skip
            journal.add("bases", [kind])
    retired_text = _retire_bases(storage, TEXT_BASE, subject, done, out)
    _retire_bases(storage, VOICE_BASE, subject, done, out)
    if "text" in journal.pending("bases"):
        _rebuild_text_base(storage, retired_text, options, out)
        journal.done("bases", "text")
    if "voice" in journal.pending("bases"):
        _rebuild_voice_base(storage, voice_steps, out)
        journal.done("bases", "voice")
    # Dependents are found by "fine-tuned from a base version that no longer exists", not by what
    # this run retired: a forget re-run after a crash still finds the ones it left.
    _retrain_dependents(storage, "text", subject, out, options=options)
    _retrain_dependents(storage, "voice", subject, out, voice_steps=voice_steps)
    return out


def persona_ids(storage: Storage, owner_id: str) -> list[str]:
    """Persona ids with datasets or models under an owner."""
    ids: set[str] = set()
    for prefix in (f"datasets/{owner_id}/", f"models/{owner_id}/", f"voice/owner={owner_id}/datasets/"):
        ids.update(k[len(prefix) :].split("/", 1)[0] for k in storage.list(prefix))
    return sorted(ids)


def _rebuild_same_owner(
    storage: Storage,
    client: Elasticsearch | None,
    subject: Subject,
    options: ModelOptions,
    embedder: Embedder | None,
    out: DerivedForget,
    journal: ForgetJournal,
) -> None:
    """The owner's other personas: rebuild without the subject's words, retrain, re-index.

    Each is journalled as owed before the first is touched and done after its re-index: once
    rebuilt, a persona looks like one the subject never spoke to, so only the journal tells a
    re-run that its retrain and re-index are still owed.
    """
    owner = subject.owner_id
    registry = Registry(storage)
    others = [p for p in persona_ids(storage, owner) if p != subject.persona_id]
    others = [p for p in others if VersionedStore(storage, f"datasets/{owner}/{p}").versions()]
    resumed = set(journal.pending("personas"))
    for persona_id in journal.add("personas", others):
        prefix = f"datasets/{owner}/{persona_id}/"
        versions = VersionedStore(storage, prefix).versions()
        if not versions:
            journal.done("personas", persona_id)
            continue
        manifest = json.loads(storage.read_bytes(f"{prefix}v{versions[-1]}/manifest.json"))
        names = list(manifest.get("persona_names") or [persona_id])
        name = next((n for n in names if slug(n) == persona_id), names[0])
        min_pairs = int((manifest.get("parameters") or {}).get("min_pairs", DatasetOptions().min_pairs))
        label = f"{owner}/{persona_id}"
        try:
            result = build_dataset(
                storage, owner, name, [n for n in names if n != name], DatasetOptions(min_pairs=min_pairs)
            )
        except (InputError, QualityGateError) as exc:
            # Too little is left without the subject: nothing of this persona may stay as it was.
            for kind in ("text",):
                for version in registry.versions(owner, persona_id, kind):
                    registry.retire(owner, persona_id, kind, version)
            delete_prefix(storage, prefix)
            if client is not None:
                delete_documents(client, PAIRS_ALIAS, owner, persona_id=persona_id)
            out.retired.append(f"{label} text (dataset no longer builds: {str(exc)[:120]})")
            out.owed.append(f"{label} text: restore again with more conversation")
            journal.done("personas", persona_id)
            continue
        fault_point("forget.rebuilt")
        # Every older version may hold the subject's words, and so may every model trained on one.
        for version in versions:
            if version != result.version:
                delete_prefix(storage, f"{prefix}v{version}/")
        delete_prefix(storage, f"{prefix}rejected/")
        if result.created:
            out.rebuilt.append(f"dataset {label} v{result.version}")
        tainted = [
            v for v in registry.versions(owner, persona_id, "text")
            if int((registry.manifest(owner, persona_id, "text", v).get("dataset") or {}).get("version", 0))
            != result.version
        ]  # fmt: skip
        if tainted:
            _retrain(storage, "text", owner, persona_id, result.version, tainted, out, options=options)
        if client is not None and (result.created or tainted or persona_id in resumed):
            from tasks.indexing.indexer import index_persona_pairs

            delete_documents(client, PAIRS_ALIAS, owner, persona_id=persona_id)
            index_persona_pairs(storage, client, owner, persona_id, result.version, embedder)
        journal.done("personas", persona_id)


def lineage_names(manifest: dict[str, Any], subject: Subject, done: LakeForget) -> bool:
    """Whether a base's lineage includes the subject (a trained base without lineage: assume so)."""
    lineage = manifest.get("lineage")
    if lineage is None:
        return "imported_from" not in (manifest.get("corpus") or {})
    if subject.owner_id in lineage.get("owners", []):
        return True
    if subject.whole_owner and subject.owner_id in lineage.get("dataset_owners", []):
        return True
    return bool(set(done.subject_keys) & set(lineage.get("subjects", [])))


def _retire_bases(
    storage: Storage, base: tuple[str, str], subject: Subject, done: LakeForget, out: DerivedForget
) -> dict[int, dict[str, Any]]:
    registry = Registry(storage)
    retired = {}
    for version in registry.versions(*base, "base"):
        manifest = registry.manifest(*base, "base", version)
        if lineage_names(manifest, subject, done):
            registry.retire(*base, "base", version)
            retired[version] = manifest
            out.retired.append(f"{'/'.join(base)} v{version}")
    return retired


def _rebuild_text_base(storage: Storage, retired: dict[int, dict[str, Any]], options: ModelOptions,
                       out: DerivedForget) -> None:  # fmt: skip
    """Train the base again on what consent still allows (the newest retired one's settings)."""
    from models.train import TrainConfig
    from tasks.training.base_model import base_corpus, train_base

    newest = retired[max(retired)] if retired else {}  # {}: retired by a run that was killed
    steps = int(((newest.get("hyper_parameters") or {}).get("train") or {}).get("max_steps") or 0)
    config = TrainConfig(**{**asdict(options.train), "max_steps": steps or options.train.max_steps})
    corpus, lineage = base_corpus(storage)
    try:
        manifest = train_base(storage, corpus, ModelOptions(train=config), "rebuilt by forget", lineage)
    except InputError as exc:
        out.owed.append(f"text base: not rebuilt ({str(exc)[:160]}); personas train without one")
        return
    out.rebuilt.append(f"{'/'.join(TEXT_BASE)} v{manifest['version']}")


def _rebuild_voice_base(storage: Storage, steps: int, out: DerivedForget) -> None:
    from tasks.voice.voice_model import train_voice_base

    try:
        manifest = train_voice_base(storage, steps=steps)
    except InputError as exc:
        out.owed.append(f"voice base: not rebuilt ({str(exc)[:160]}); voices adapt without one")
        return
    out.rebuilt.append(f"{'/'.join(VOICE_BASE)} v{manifest['version']}")


def _retrain_dependents(
    storage: Storage,
    kind: str,
    subject: Subject,
    out: DerivedForget,
    options: ModelOptions | None = None,
    voice_steps: int = 300,
) -> None:
    """Every persona (any owner) fine-tuned from a retired base: retrain, retire the old versions."""
    registry = Registry(storage)
    live = set(registry.versions(*(TEXT_BASE if kind == "text" else VOICE_BASE), "base"))
    for owner, persona_id in registry.personas(kind):
        if (owner, persona_id) == TEXT_BASE or (owner, persona_id) == VOICE_BASE:
            continue
        if owner == subject.owner_id and (subject.whole_owner or persona_id == subject.persona_id):
            continue
        tainted = [
            v
            for v in registry.versions(owner, persona_id, kind)
            if (used := registry.manifest(owner, persona_id, kind, v).get("base_version")) is not None
            and used not in live
        ]
        if not tainted:
            continue
        newest = registry.manifest(owner, persona_id, kind, max(registry.versions(owner, persona_id, kind)))
        dataset_version = int((newest.get("dataset") or {}).get("version", 0))
        _retrain(storage, kind, owner, persona_id, dataset_version, tainted, out, options, voice_steps)


def _retrain(
    storage: Storage,
    kind: str,
    owner: str,
    persona_id: str,
    dataset_version: int,
    tainted: list[int],
    out: DerivedForget,
    options: ModelOptions | None = None,
    voice_steps: int = 300,
) -> None:
    """Train a clean version, then retire the tainted ones (retired even if training fails)."""
    registry = Registry(storage)
    label = f"{owner}/{persona_id} {kind}"
    clean: int | None = None
    try:
        if kind == "text":
            from tasks.training.train import train_persona

            manifest = train_persona(storage, owner, persona_id, dataset_version, options)
        else:
            from tasks.voice.voice_model import train_user_voice

            name = _voice_name(storage, owner, persona_id, dataset_version)
            manifest = train_user_voice(storage, owner, name, dataset_version, voice_steps)
        out.rebuilt.append(f"{label} v{manifest['version']}")
        clean = int(manifest["version"])
    except Exception as exc:  # whatever failed, the tainted versions still go below
        out.owed.append(
            f"{label}: not retrained ({str(exc)[:160]}); the next recycling pass or restore does it"
        )
    fault_point("forget.retrained")
    for version in tainted:
        registry.retire(owner, persona_id, kind, version)
        out.retired.append(f"{label} v{version}")
    aliases = registry.aliases(owner, persona_id, kind)
    # Production held the subject's words and is gone: the clean version trained just now serves
    # (its gate compared it with that tainted production); never an older candidate the gate refused.
    if clean is not None and "production" not in aliases and aliases.get("latest") == clean:
        registry.set_alias(owner, persona_id, kind, "production", clean)


def _voice_name(storage: Storage, owner: str, persona_id: str, version: int) -> str:
    """The display name a voice dataset was built for (its segments' speaker)."""
    key = f"voice/owner={owner}/datasets/{persona_id}/v{version}/segments.parquet"
    speakers = pq.read_table(io.BytesIO(storage.read_bytes(key)), columns=["speaker"])["speaker"].to_pylist()
    return next((s for s in speakers if s and slug(s) == persona_id), persona_id)
