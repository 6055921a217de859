"""Voice recordings in an owner's lake -> utterance segments (audio + VoiceSegment rows).

Input: `voice/owner={owner}/recordings/*.parquet` (written by data recycling from the platform's
voice manifests). Output per recording: `voice/owner={owner}/segments/{recording}.parquet` (every
segment, kept or dropped with its reason) and `voice/owner={owner}/audio/{recording}/{i}.wav`
(kept segments: mono, resampled, loudness-normalised 16-bit PCM). A recording whose rows exist
is skipped (idempotent); undecodable audio goes to `quarantine/{owner}/voice-{recording}.parquet`
with ffmpeg's complaint in one line. A recording's transcript is shared out over its utterances
(`tasks/voice/transcripts.py`: words cut where the speaking time says, preferring punctuation); when no
sharing is credible the utterances get none.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydub import AudioSegment

from infra.storage import Storage
from infra.version import CODE_VERSION
from infra.versions import VersionedStore
from parsers.errors import InputError
from schemas.message import QUARANTINE_SCHEMA
from schemas.names import slug
from schemas.platform import VOICE_SEGMENT_SCHEMA
from tasks.trust.zones import speakable
from tasks.voice.audio import AudioError, AudioOptions, decode, preprocess, wav_bytes
from tasks.voice.transcripts import split_transcript

#: Utterance audio -> its words (None: none heard); `tasks.voice.asr.Transcriber` is one.
Transcribe = Callable[[AudioSegment], str | None]


@dataclass
class VoiceSummary:
    """What preprocessing an owner's recordings did."""

    owner_id: str
    recordings: int = 0
    skipped: int = 0
    quarantined: int = 0
    segments_kept: int = 0
    segments_dropped: dict[str, int] = field(default_factory=dict)
    seconds_in: float = 0.0
    seconds_kept: float = 0.0
    transcribed: int = 0  # utterances given words by the speech recogniser

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def process_owner_recordings(
    storage: Storage,
    owner_id: str,
    options: AudioOptions | None = None,
    transcriber: Transcribe | None = None,
) -> VoiceSummary:
    """Segment every not-yet-processed recording of an owner."""
    options = options or AudioOptions()
    summary = VoiceSummary(owner_id)
    for key in storage.list(f"voice/owner={owner_id}/recordings/"):
        if not key.endswith(".parquet"):
            continue
        for rec in pq.read_table(io.BytesIO(storage.read_bytes(key))).to_pylist():
            out_key = f"voice/owner={owner_id}/segments/{rec['recording_id']}.parquet"
            if storage.exists(out_key):
                summary.skipped += 1
                summary.transcribed += fill_transcripts(storage, out_key, transcriber)
                continue
            process_recording(storage, owner_id, rec, options, summary, transcriber)
    return summary


def process_recording(
    storage: Storage,
    owner_id: str,
    rec: dict[str, Any],
    options: AudioOptions,
    summary: VoiceSummary,
    transcriber: Transcribe | None = None,
) -> None:
    """Decode, segment and store one recording (rows written last: they mark it done).

    Utterances get the recording's transcript (shared out when there are several); those left
    without words are transcribed when a `transcriber` (local ASR model) is given.
    """
    recording = rec["recording_id"]
    try:
        audio = decode(storage.read_bytes(rec["audio_key"]), rec["audio_key"])
    except (AudioError, FileNotFoundError) as exc:
        _quarantine(storage, owner_id, rec, str(exc))
        summary.quarantined += 1
        return
    summary.recordings += 1
    summary.seconds_in += len(audio) / 1000
    segments = preprocess(audio, options)
    # Too quiet or too noisy to be the speaker's words: left out of the sharing of the transcript.
    spoken = [i for i, s in enumerate(segments) if s.drop_reason not in ("too_quiet", "low_snr")]
    words = speakable(rec.get("transcript")) or ""  # personal data in the words: none are kept
    texts = split_transcript(words, [segments[i].duration_s for i in spoken]) or []
    text_of = dict(zip(spoken, texts, strict=False))
    source = "manifest" if len(texts) == 1 else "shared"
    rows = []
    for i, seg in enumerate(segments):
        uri, text, text_source = None, text_of.get(i), source if i in text_of else None
        if seg.audio is not None:
            if text is None and transcriber is not None:
                text, text_source = transcriber(seg.audio), "asr"  # "asr" with no text: tried, none heard
                summary.transcribed += 1 if text else 0
            wav_key = f"voice/owner={owner_id}/audio/{recording}/{i:03d}.wav"
            with storage.open_write(wav_key) as handle:
                handle.write(wav_bytes(seg.audio))
            uri = storage.uri(wav_key)
            summary.segments_kept += 1
            summary.seconds_kept += seg.duration_s
        else:
            reason = seg.drop_reason or "dropped"
            summary.segments_dropped[reason] = summary.segments_dropped.get(reason, 0) + 1
        rows.append(
            {
                "segment_id": f"{recording}-{i:03d}",
                "owner_id": owner_id,
                "speaker": rec["speaker"],
                "recording_id": recording,
                "audio_uri": uri,
                "start_s": seg.start_s,
                "end_s": seg.end_s,
                "duration_s": seg.duration_s,
                "sample_rate": options.sample_rate,
                "rms_dbfs": seg.rms_dbfs,
                "peak_dbfs": seg.peak_dbfs,
                "clipping_ratio": seg.clipping_ratio,
                "snr_db": seg.snr_db,
                "transcript": text if seg.audio is not None else None,
                "drop_reason": seg.drop_reason,
                "transcript_source": text_source if seg.audio is not None else None,
            }
        )
    with storage.open_write(f"voice/owner={owner_id}/segments/{recording}.parquet") as handle:
        pq.write_table(pa.Table.from_pylist(rows, schema=VOICE_SEGMENT_SCHEMA), handle)


def fill_transcripts(storage: Storage, segments_key: str, transcriber: Transcribe | None) -> int:
    """Transcribe the kept utterances of a processed recording that have no words and were never tried.

    A recogniser configured after recordings were processed still reaches them; the rows are
    rewritten in place (same key). Returns how many utterances got words.
    """
    if transcriber is None:
        return 0
    rows = pq.read_table(io.BytesIO(storage.read_bytes(segments_key))).to_pylist()
    todo = [r for r in rows if r["audio_uri"] and not r["transcript"] and not r.get("transcript_source")]
    if not todo:
        return 0
    heard = 0
    for row in todo:
        audio = AudioSegment.from_wav(io.BytesIO(storage.read_bytes(storage.key(row["audio_uri"]))))
        row["transcript"], row["transcript_source"] = speakable(transcriber(audio)), "asr"
        heard += 1 if row["transcript"] else 0
    with storage.open_write(segments_key) as handle:
        pq.write_table(pa.Table.from_pylist(rows, schema=VOICE_SEGMENT_SCHEMA), handle)
    return heard


def _quarantine(storage: Storage, owner_id: str, rec: dict[str, Any], reason: str) -> None:
    row = {
        "owner_id": owner_id,
        "upload_id": "voice",
        "source_file": rec["audio_key"],
        "line_no": int(rec.get("line_no") or 0),
        "reason": reason,
        "raw": rec["recording_id"],
    }
    with storage.open_write(f"quarantine/{owner_id}/voice-{rec['recording_id']}.parquet") as handle:
        pq.write_table(pa.Table.from_pylist([row], schema=QUARANTINE_SCHEMA), handle)


def build_voice_dataset(storage: Storage, owner_id: str, persona: str) -> dict[str, Any]:
    """Version the persona's kept utterances: `voice/owner={owner}/datasets/{persona}/v{n}/`.

    The content hash covers every kept segment's id, timing and WAV sha256; unchanged input
    gives the existing version back. The manifest is created exclusively and last.
    """
    persona_id = slug(persona)
    rows = []
    for key in storage.list(f"voice/owner={owner_id}/segments/"):
        if key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(storage.read_bytes(key)))
            rows += [r for r in table.to_pylist() if r["speaker"] == persona and r["drop_reason"] is None]
    if not rows:
        raise InputError(
            f"voice of {owner_id}/{persona}", "has no kept utterances (process recordings first)"
        )
    rows.sort(key=lambda r: r["segment_id"])
    digest = hashlib.sha256()
    for r in rows:
        wav = storage.read_bytes(storage.key(r["audio_uri"]))
        words = r["transcript"] or ""
        digest.update(
            f"{r['segment_id']}|{r['duration_s']:.3f}|{hashlib.sha256(wav).hexdigest()}|{words}\n".encode()
        )
    content_hash = digest.hexdigest()
    store = VersionedStore(storage, f"voice/owner={owner_id}/datasets/{persona_id}")
    latest = store.latest()
    # A version from before manifests listed their files cannot be verified: build a new one.
    if latest is not None and latest.get("files") and latest["content_hash"] == content_hash:
        return {**latest, "created": False}
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=VOICE_SEGMENT_SCHEMA), sink)
    manifest = store.write(
        {"segments.parquet": sink.getvalue()},
        {
            "kind": "voice_dataset",
            "owner_id": owner_id,
            "persona_id": persona_id,
            "created_at": datetime.now(UTC).isoformat(),
            "code_version": CODE_VERSION,
            "content_hash": content_hash,
            "segments": len(rows),
            "minutes": sum(r["duration_s"] for r in rows) / 60,
            "with_transcript": sum(1 for r in rows if r["transcript"]),
            "transcripts_by_source": dict(
                Counter(r.get("transcript_source") or "manifest" for r in rows if r["transcript"])
            ),
            "recordings": len({r["recording_id"] for r in rows}),
        },
    )
    return {**manifest, "created": True}


def restore_voice(
    storage: Storage,
    owner_id: str,
    persona: str,
    names: list[str],
    audio_files: Sequence[tuple[str, bytes, str | None]],
    options: AudioOptions | None = None,
    transcriber: Transcribe | None = None,
) -> dict[str, Any]:
    """Voice for an instant restore: uploaded audio plus the persona's KakaoTalk voice messages.

    `audio_files` are (name, bytes, transcript or None) the user uploaded as the persona's voice;
    voice messages (kind `voice` with a media file, from zip exports) are found in the owner's
    lake. Each becomes a recording, is segmented (done ones are skipped) and the persona's voice
    dataset is versioned. Returns the summary and the dataset manifest (None without utterances).
    """
    from tasks.ingest.lake import message_parts, read_parts

    options = options or AudioOptions()
    summary = VoiceSummary(owner_id)
    recordings = []
    for name, data, transcript in audio_files:
        digest = hashlib.sha256(data).hexdigest()[:16]
        key = f"raw/{owner_id}/voice/{digest}/{name.rsplit('/', 1)[-1]}"
        if not storage.exists(key):
            with storage.open_write(key) as handle:
                handle.write(data)
        recordings.append({"recording_id": f"upload-{digest}", "audio_key": key, "transcript": transcript})
    table = read_parts(storage, message_parts(storage, owner_id))
    for row in table.select(["message_id", "speaker", "kind", "attachment"]).to_pylist():
        if row["kind"] == "voice" and row["attachment"] and row["speaker"] in names:
            recordings.append(
                {
                    "recording_id": f"kakao-{row['message_id']}",
                    "audio_key": storage.key(row["attachment"]),
                    "transcript": None,
                }
            )
    for rec in recordings:
        out_key = f"voice/owner={owner_id}/segments/{rec['recording_id']}.parquet"
        if storage.exists(out_key):
            summary.skipped += 1
            summary.transcribed += fill_transcripts(storage, out_key, transcriber)
            continue
        full: dict[str, Any] = {**rec, "speaker": persona, "line_no": 0}
        process_recording(storage, owner_id, full, options, summary, transcriber)
    try:
        dataset: dict[str, Any] | None = build_voice_dataset(storage, owner_id, persona)
    except InputError:
        dataset = None
    return {"summary": summary.to_dict(), "dataset": dataset}
