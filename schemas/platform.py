"""The landing-data contract between the memorial platform's backend and this pipeline.

The backend drops immutable JSON Lines files (UTF-8, one object per line) into the lake:

```
landing/platform/chat/dt=YYYY-MM-DD/<any name>.jsonl     chat events (CHAT_EVENT_FIELDS)
landing/platform/voice/dt=YYYY-MM-DD/<any name>.jsonl    voice recording manifests (VOICE_FIELDS)
landing/platform/voice/audio/<any path>                  the audio objects the manifests name
landing/platform/consent/<any name>.jsonl                consent records (CONSENT_FIELDS)
```

`dt` is the day the backend wrote the file (UTC), not the day of the events inside it: late
events simply arrive in a later partition. A file is never rewritten once its name is visible
(the backend writes it complete or not at all), so a processed file name is a safe watermark.

Consent decides whose persona may be built: a subject's messages train their persona only for an
owner holding an unrevoked consent for that subject. Everyone else in a room stays anonymous
context (their display name tagged with their user id, so it can never be taken for a persona).
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from schemas.message import TS_TYPE

#: name -> (JSON type, required). Times are ISO 8601 with an explicit UTC offset.
CHAT_EVENT_FIELDS: Final[dict[str, tuple[type, bool]]] = {
    "event_id": (str, True),
    "room_id": (str, True),
    "room_kind": (str, True),  # "public" | "private"
    "sender_id": (str, True),
    "sender_name": (str, True),
    "sent_at": (str, True),
    "type": (str, True),  # one of CHAT_EVENT_TYPES
    "content": (str, False),  # null for media without caption
}

VOICE_FIELDS: Final[dict[str, tuple[type, bool]]] = {
    "recording_id": (str, True),
    "room_id": (str, True),
    "speaker_id": (str, True),
    "started_at": (str, True),
    "duration_s": (float, True),
    "audio_path": (str, True),  # key under landing/platform/voice/audio/
    "transcript": (str, False),
}

CONSENT_FIELDS: Final[dict[str, tuple[type, bool]]] = {
    "consent_id": (str, True),
    "owner_id": (str, True),  # the platform user who may restore the subject
    "subject_id": (str, True),  # the platform user id of the person to restore
    "persona": (str, True),  # the name the owner gives the persona (speaker name in the lake)
    "granted_at": (str, True),
    "revoked_at": (str, False),
    "scope": (str, False),  # "all" (default) or "public": private rooms only with "all"
    # true: the subject's words may also train the shared text and voice bases (redacted);
    # false or absent (the default): they train only this owner's persona.
    "base_training": (bool, False),
}

ROOM_KINDS: Final = ("public", "private")
CONSENT_SCOPES: Final = ("all", "public")

#: Platform event type -> Message kind.
CHAT_EVENT_TYPES: Final[dict[str, str]] = {
    "text": "text",
    "image": "photo",
    "video": "video",
    "sticker": "emoticon",
    "file": "file",
    "voice": "voice",
    "call": "call",
    "deleted": "deleted",
    "join": "system",
    "leave": "system",
    "notice": "system",
}

#: Staged chat events: every valid event of the platform, partitioned by room, before routing.
PLATFORM_CHAT_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("room_id", pa.string(), nullable=False),
        pa.field("room_kind", pa.string(), nullable=False),
        pa.field("sender_id", pa.string(), nullable=False),
        pa.field("sender_name", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line_no", pa.int64(), nullable=False),
    ],
    metadata={"contract": "rememberme.platform_chat.v1"},
)

VOICE_RECORDING_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("recording_id", pa.string(), nullable=False),
        pa.field("owner_id", pa.string(), nullable=False),
        pa.field("room_id", pa.string(), nullable=False),
        pa.field("speaker_id", pa.string(), nullable=False),
        pa.field("speaker", pa.string(), nullable=False),  # the persona name
        pa.field("started_at", TS_TYPE, nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("audio_uri", pa.string(), nullable=False),
        pa.field("audio_key", pa.string(), nullable=False),  # the same object as a lake key
        pa.field("transcript", pa.string(), nullable=True),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line_no", pa.int64(), nullable=False),
    ],
    metadata={"contract": "rememberme.voice_recording.v1"},
)

#: One utterance cut from a recording (DESIGN.md section 3, VoiceSegment); dropped segments stay
#: as rows with their reason (and no audio), so the report can say what was lost and why.
VOICE_SEGMENT_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("segment_id", pa.string(), nullable=False),
        pa.field("owner_id", pa.string(), nullable=False),
        pa.field("speaker", pa.string(), nullable=False),
        pa.field("recording_id", pa.string(), nullable=False),
        pa.field("audio_uri", pa.string(), nullable=True),  # null when dropped
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("sample_rate", pa.int32(), nullable=False),
        pa.field("rms_dbfs", pa.float64(), nullable=False),
        pa.field("peak_dbfs", pa.float64(), nullable=False),
        pa.field("clipping_ratio", pa.float64(), nullable=False),
        pa.field("snr_db", pa.float64(), nullable=True),
        pa.field("transcript", pa.string(), nullable=True),
        pa.field("drop_reason", pa.string(), nullable=True),
        # Where the words came from: "manifest" (the recording's own, one utterance), "shared"
        # (the recording's transcript shared out over its utterances), "asr"; null: no words.
        # Added in v2; v1 files read back with it null.
        pa.field("transcript_source", pa.string(), nullable=True),
    ],
    metadata={"contract": "rememberme.voice_segment.v2"},
)
