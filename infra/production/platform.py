"""What the platform backend puts in the lake before it asks for a run: uploads and landing data."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

from infra.storage import open_storage
from parsers.platform import synth
from tasks.ingest.platform import write_landing

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "kakao_android_ko.txt"
#: The first day of generated landing data.
START = date(2024, 3, 1)


def upload_export(lake_url: str, owner_id: str, export: Path = SAMPLE) -> str:
    """Store a user's export under `landing/uploads/{owner}/{upload}/` as the backend does; its key."""
    key = f"landing/uploads/{owner_id}/{uuid.uuid4().hex[:12]}/{export.name}"
    open_storage(lake_url).create(key, export.read_bytes())
    return key


def write_days(
    lake_url: str, rooms: int, first_day: int, days: int, only_room: int | None = None, owners: str = "family"
) -> int:
    """Chat landing files of `rooms` rooms for `days` days from `START + first_day`; files written.

    Rooms and their people come from one seed (the same families every call); each day's events
    from a seed of the day, so later days add new messages of the same personas. No voice: the
    rehearsal is about the topology, voice recycling has its own tests.
    """
    world = synth.world(rooms, seed=7, owners=owners)
    if only_room is not None:
        world = [world[only_room]]
    day = date.fromordinal(START.toordinal() + first_day)
    files = synth.history(world, day, days, events_per_day=90, seed=7 + first_day, voice=0, active_share=1.0)
    return write_landing(open_storage(lake_url), files)


def as_of(first_day: int, days: int) -> str:
    """The pass's day that takes in landing days `first_day` .. `first_day + days - 1`."""
    return date.fromordinal(START.toordinal() + first_day + days - 1).isoformat()
