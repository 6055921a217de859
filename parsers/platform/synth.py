"""Deterministic synthetic landing data of the memorial platform (tests, the demo, benchmarks).

A world of rooms: each room has one remembered person (the subject), the family member who
restores them (the owner, holding a consent), and sometimes friends without consent. Each day
some rooms are active; the files follow `schemas/platform.py` exactly, and `bad_lines` adds
malformed lines so the quarantine path is exercised too.
"""

from __future__ import annotations

import io
import json
import math
import random
import struct
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from parsers.kakao.synth import PERSONA_LINES, USER_LINES

KST = timezone(timedelta(hours=9))
_SUBJECT_NAMES = ("김순자", "박영수", "이말순", "최정호", "정옥자", "강만복", "윤금례", "장덕수")
_PERSONAS = ("엄마", "아빠", "할머니", "할아버지", "이모", "삼촌")
_FRIEND_NAMES = ("민지", "준호", "서연", "도윤", "하은", "지호")


@dataclass(frozen=True)
class Room:
    """One room of the platform and who talks in it."""

    room_id: str
    kind: str
    subject_id: str
    subject_name: str
    persona: str
    owner_id: str
    owner_name: str
    friends: tuple[tuple[str, str], ...]


def world(rooms: int = 10, seed: int = 1, public_share: float = 0.2, owners: str = "owner") -> list[Room]:
    """`rooms` rooms, each with a subject, its owner (`{owners}-00000`, ...) and 0-2 friends."""
    rng = random.Random(seed)
    out = []
    for i in range(rooms):
        friends = tuple(
            (f"u-friend-{i:05d}-{j}", rng.choice(_FRIEND_NAMES)) for j in range(rng.randint(0, 2))
        )
        out.append(
            Room(
                room_id=f"room-{i:05d}",
                kind="public" if rng.random() < public_share else "private",
                subject_id=f"u-subject-{i:05d}",
                subject_name=rng.choice(_SUBJECT_NAMES),
                persona=_PERSONAS[i % len(_PERSONAS)],
                owner_id=f"{owners}-{i:05d}",
                owner_name=f"{rng.choice(_FRIEND_NAMES)}네",
                friends=friends,
            )
        )
    return out


def consent_files(rooms: list[Room], granted: date = date(2024, 1, 1)) -> dict[str, bytes]:
    """One consent file granting each room's owner its subject's persona."""
    lines = [
        {
            "consent_id": f"consent-{r.room_id}",
            "owner_id": r.owner_id,
            "subject_id": r.subject_id,
            "persona": r.persona,
            "granted_at": datetime.combine(granted, time(9), KST).isoformat(),
            "revoked_at": None,
            "scope": "all",
            "base_training": n % 2 == 0,  # both kinds: half the subjects also share with the bases
        }
        for n, r in enumerate(rooms)
    ]
    return {"landing/platform/consent/consents.jsonl": _jsonl(lines)}


def day_files(
    rooms: list[Room],
    day: date,
    events: int = 200,
    active_share: float = 0.3,
    voice: int = 2,
    bad_lines: int = 0,
    seed: int = 1,
) -> dict[str, bytes]:
    """Landing files the backend writes for `day`: chat events, voice manifests and audio."""
    rng = random.Random(f"{seed}-{day.isoformat()}")
    active = rng.sample(rooms, max(1, round(len(rooms) * active_share)))
    chat = []
    for n in range(events):
        room = active[n % len(active)]
        chat.append(_event(rng, room, day, n))
    chat.sort(key=lambda e: (e["sent_at"], e["event_id"]))
    raw_chat = [json.dumps(e, ensure_ascii=False) for e in chat]
    for i in range(bad_lines):
        at = rng.randrange(len(raw_chat) + 1)
        raw_chat.insert(at, ('{"event_id": "broken', '{"event_id": "x"}', "[1, 2]")[i % 3])
    stamp = day.strftime("%Y%m%d")
    files = {f"landing/platform/chat/dt={day.isoformat()}/chat-{stamp}.jsonl": _lines(raw_chat)}
    manifests = []
    for k in range(voice):
        room = active[k % len(active)]
        recording = f"rec-{stamp}-{k:04d}"
        seconds = rng.uniform(1.0, 3.0)
        audio_path = f"{day.isoformat()}/{recording}.wav"
        files[f"landing/platform/voice/audio/{audio_path}"] = tone(seconds, 300 + 40 * k)
        manifests.append(
            {
                "recording_id": recording,
                "room_id": room.room_id,
                "speaker_id": room.subject_id,
                "started_at": datetime.combine(day, time(20, k % 60), KST).isoformat(),
                "duration_s": round(seconds, 3),
                "audio_path": audio_path,
                "transcript": rng.choice(PERSONA_LINES),
            }
        )
    if manifests:
        files[f"landing/platform/voice/dt={day.isoformat()}/voice-{stamp}.jsonl"] = _jsonl(manifests)
    return files


def history(
    rooms: list[Room],
    start: date,
    days: int,
    events_per_day: int = 200,
    seed: int = 1,
    voice: int = 2,
    active_share: float = 0.3,
) -> dict[str, bytes]:
    """Consent plus `days` days of landing files from `start`."""
    files = consent_files(rooms)
    for offset in range(days):
        day = start + timedelta(days=offset)
        files.update(day_files(rooms, day, events_per_day, active_share, voice=voice, seed=seed))
    return files


def _event(rng: random.Random, room: Room, day: date, n: int) -> dict[str, object]:
    minute = rng.randrange(8 * 60, 23 * 60)
    sent = datetime.combine(day, time(minute // 60, minute % 60, rng.randrange(60)), KST)
    pick = rng.random()
    if pick < 0.45:
        sender_id, name, line = room.subject_id, room.subject_name, rng.choice(PERSONA_LINES)
    elif pick < 0.85 or not room.friends:
        sender_id, name, line = f"u-{room.owner_id}", room.owner_name, rng.choice(USER_LINES)
    else:
        sender_id, name = rng.choice(room.friends)
        line = rng.choice(USER_LINES)
    kind = "image" if rng.random() < 0.03 else "text"
    return {
        "event_id": f"ev-{day:%Y%m%d}-{room.room_id}-{n:06d}",
        "room_id": room.room_id,
        "room_kind": room.kind,
        "sender_id": sender_id,
        "sender_name": name,
        "sent_at": sent.isoformat(),
        "type": kind,
        "content": line if kind == "text" else None,
    }


def tone(seconds: float, hz: float, rate: int = 8000) -> bytes:
    """A short mono 16-bit WAV (a stand-in recording; real speech comes with the voice issue)."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate)))
        for i in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def _jsonl(records: Sequence[Mapping[str, object]]) -> bytes:
    return _lines([json.dumps(r, ensure_ascii=False) for r in records])


def _lines(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()
