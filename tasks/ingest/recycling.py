"""One data-recycling pass over the platform's landing area, as plain steps the flow wires.

plan (what is new since the watermark, which consents hold) -> stage each new chat file ->
route staged events to consenting owners -> route voice manifests -> (index, datasets: the
flow fans those out per owner/persona) -> commit the new watermark. Nothing before `commit`
moves a position, and every step's outputs are named from its inputs, so a pass that dies
anywhere is redone by the next run with the same objects and no duplicates.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from infra.faults import fault_point
from infra.storage import Storage
from parsers.platform.events import Consent
from tasks.ingest.platform import (
    CHAT_PREFIX,
    VOICE_PREFIX,
    RoutedPart,
    StagedFile,
    active_consents,
    load_consents,
    load_members,
    route_to_owners,
    route_voice,
    save_members,
)
from tasks.ingest.watermarks import RecyclingState, StreamMark, advance, load_state, pending_files, save_state
from tasks.lifecycle.forget import is_forgotten, load_tombstones
from tasks.runs.retries import WORK_KINDS, RetryItem, due, settle


@dataclass
class RecyclePlan:
    """What one pass will read."""

    as_of: date
    lookback_days: int
    chat_files: list[str]
    voice_files: list[str]
    consents: list[Consent]
    consents_rejected: int
    state: RecyclingState
    #: failed pieces of earlier passes that this pass does again
    retry: list[RetryItem] = field(default_factory=list)
    #: recorded pieces whose subject is gone (forgotten, consent revoked): dropped at commit
    dropped: list[str] = field(default_factory=list)

    @property
    def has_new_files(self) -> bool:
        """Whether any landing file arrived since the last pass."""
        return bool(self.chat_files or self.voice_files)

    def work(self, routed: RouteResult) -> PassWork:
        """What this pass does: what changed now plus what earlier passes failed to do."""
        retry = {kind: [i for i in self.retry if i.work == kind] for kind in WORK_KINDS}
        index = {owner: set(parts) for owner, parts in routed.parts_by_owner().items()}
        for item in retry["index"]:
            index.setdefault(item.owner_id, set()).update(item.parts)
        for item in self.state.failed.values():  # new parts of a parked owner: its owed parts too
            if item.work == "index" and item.owner_id in index:
                index[item.owner_id].update(item.parts)
        personas = set(routed.personas()) | {(i.owner_id, i.persona or "") for i in retry["text"]}
        voice_owners = {owner for owner, _, _ in routed.voice} | {i.owner_id for i in retry["voice-prep"]}
        voices = {(c.owner_id, c.persona) for c in self.consents if c.owner_id in voice_owners}
        voices |= {(i.owner_id, i.persona or "") for i in retry["voice"]}
        return PassWork(
            {owner: sorted(parts) for owner, parts in sorted(index.items())},
            sorted(personas),
            sorted(voice_owners),
            sorted(voices),
        )


@dataclass
class PassWork:
    """The pieces of one pass, each of which may fail without failing the others."""

    index: dict[str, list[str]]
    personas: list[tuple[str, str]]
    voice_owners: list[str]
    voices: list[tuple[str, str]]

    def index_pieces(self) -> list[RetryItem]:
        """One piece per owner to index (with its parts)."""
        return [RetryItem("index", owner, None, parts) for owner, parts in self.index.items()]

    def text_pieces(self) -> list[RetryItem]:
        """One piece per persona whose text model is refreshed."""
        return [RetryItem("text", owner, persona) for owner, persona in self.personas]


@dataclass
class RouteResult:
    """What routing wrote into owners' lakes."""

    parts: list[RoutedPart] = field(default_factory=list)
    routed: dict[str, list[str]] = field(default_factory=dict)
    voice: list[tuple[str, str, int]] = field(default_factory=list)
    voice_rejected: int = 0

    def personas(self) -> list[tuple[str, str]]:
        """(owner, persona) pairs whose data changed in this pass."""
        return sorted({(p.owner_id, p.persona) for p in self.parts if p.rows})

    def parts_by_owner(self) -> dict[str, list[str]]:
        """Message parts written per owner (what must be indexed)."""
        out: dict[str, list[str]] = defaultdict(list)
        for p in self.parts:
            out[p.owner_id].append(p.key)
        return {owner: sorted(set(keys)) for owner, keys in sorted(out.items())}

    def summary(self) -> dict[str, Any]:
        """Counts for artifacts and logs."""
        return {
            "owners": len(self.parts_by_owner()),
            "personas_changed": len(self.personas()),
            "rows_routed": sum(p.rows for p in self.parts),
            "voice_recordings": sum(n for _, _, n in self.voice),
            "voice_rejected": self.voice_rejected,
        }


def plan_pass(
    storage: Storage, as_of: date, lookback_days: int = 3, retry_parked: bool = False
) -> RecyclePlan:
    """Read the watermark, list new landing files, load consents minus tombstones, pick retries."""
    state = load_state(storage)
    chat = pending_files(storage, CHAT_PREFIX, state.streams.get("chat", StreamMark()), as_of)
    voice = pending_files(storage, VOICE_PREFIX, state.streams.get("voice", StreamMark()), as_of)
    consents, rejected = load_consents(storage)
    active = active_consents(consents, load_tombstones(storage))
    owners = {c.owner_id for c in active}
    subjects = {(c.owner_id, c.persona) for c in active}
    retry: list[RetryItem] = []
    dropped: list[RetryItem] = []
    for item in due(state.failed, retry_parked):
        alive = item.owner_id in owners if item.persona is None else (item.owner_id, item.persona) in subjects
        (retry if alive else dropped).append(item)
    return RecyclePlan(
        as_of, lookback_days, chat, voice, active, len(rejected), state, retry, [i.key for i in dropped]
    )


def route_pass(storage: Storage, plan: RecyclePlan, staged: list[StagedFile]) -> RouteResult:
    """Update room membership with the staged files, then route chat and voice to owners."""
    members = save_members(storage, load_members(storage), [m for s in staged for m in s.members])
    new_parts: dict[str, list[str]] = defaultdict(list)
    for s in staged:
        for room, key in s.parts.items():
            new_parts[room].append(key)
    parts, routed = route_to_owners(storage, plan.consents, members, new_parts, plan.state.routed)
    result = RouteResult(parts, routed)
    for key in plan.voice_files:
        written, rejected = route_voice(storage, key, plan.consents, members)
        result.voice.extend(written)
        result.voice_rejected += rejected
    fault_point("recycle.routed")
    return result


def commit_pass(
    storage: Storage,
    plan: RecyclePlan,
    routed: RouteResult,
    attempted: list[str | RetryItem] | None = None,
    failed: list[RetryItem] | None = None,
) -> RecyclingState:
    """Advance the watermarks, remember routed rooms and the failed pieces: the one last state write.

    `attempted` holds every piece the pass ran (succeeded or not; an index piece with the parts it
    indexed, or a bare key); `failed` those that failed. The watermark moves either way: a failed
    piece's data is in its owner's lake already, and the recorded piece makes the next pass do it
    again.
    """
    state = plan.state
    for stream, files in (("chat", plan.chat_files), ("voice", plan.voice_files)):
        mark = state.streams.get(stream, StreamMark())
        state.streams[stream] = advance(mark, files, plan.as_of, plan.lookback_days)
    state.routed = routed.routed
    done = [*(attempted or []), *plan.dropped]
    state.failed = settle(state.failed, done, failed or [], plan.as_of.isoformat())
    # Tombstones read again now, not at planning: a forget that ran during the pass dropped its
    # subject's pieces from the ledger, and this write must not bring their names back.
    tombstones = load_tombstones(storage)
    state.failed = {
        k: i for k, i in state.failed.items() if not is_forgotten(tombstones, i.owner_id, i.persona)
    }
    state.runs += 1
    save_state(storage, state)
    fault_point("recycle.committed")
    return state
