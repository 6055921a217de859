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

from infra.storage import Storage
from parsers.platform.events import Consent
from tasks.forget import load_tombstones
from tasks.platform import (
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
from tasks.watermarks import RecyclingState, StreamMark, advance, load_state, pending_files, save_state


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

    @property
    def has_new_files(self) -> bool:
        """Whether any landing file arrived since the last pass."""
        return bool(self.chat_files or self.voice_files)


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


def plan_pass(storage: Storage, as_of: date, lookback_days: int = 3) -> RecyclePlan:
    """Read the watermark, list new landing files, load consents minus tombstones."""
    state = load_state(storage)
    chat = pending_files(storage, CHAT_PREFIX, state.streams.get("chat", StreamMark()), as_of)
    voice = pending_files(storage, VOICE_PREFIX, state.streams.get("voice", StreamMark()), as_of)
    consents, rejected = load_consents(storage)
    active = active_consents(consents, load_tombstones(storage))
    return RecyclePlan(as_of, lookback_days, chat, voice, active, len(rejected), state)


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
    return result


def commit_pass(storage: Storage, plan: RecyclePlan, routed: RouteResult) -> RecyclingState:
    """Advance the watermarks and remember routed rooms: the pass's one and last state write."""
    state = plan.state
    for stream, files in (("chat", plan.chat_files), ("voice", plan.voice_files)):
        mark = state.streams.get(stream, StreamMark())
        state.streams[stream] = advance(mark, files, plan.as_of, plan.lookback_days)
    state.routed = routed.routed
    state.runs += 1
    save_state(storage, state)
    return state
