"""Voice preprocessing on speech the tests make themselves (espeak-ng), through real ffmpeg."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pydub import AudioSegment
from pydub.generators import WhiteNoise

from infra.storage import open_storage
from tasks.voice.audio import AudioError, AudioOptions, decode, preprocess, wav_bytes

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("espeak-ng")),
    reason="ffmpeg and espeak-ng come from Debian (make test installs them)",
)
PHRASES = ["안녕하세요 오늘 날씨가 참 좋네요", "밥은 먹었니 따뜻하게 입고 다녀", "주말에 집에 올 수 있어"]


def _speech(text: str, tmp: Path) -> AudioSegment:
    out = tmp / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", text, "-w", str(out)], check=True)
    return AudioSegment.from_wav(out)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> AudioSegment:
    """Three utterances separated by 1.5 s of quiet room noise, at 16 kHz like a phone."""
    tmp = tmp_path_factory.mktemp("speech")
    noise = WhiteNoise().to_audio_segment(duration=1500, volume=-62).set_frame_rate(22050).set_channels(1)
    audio = noise[:1000]
    for phrase in PHRASES:
        audio += _speech(phrase, tmp).set_frame_rate(22050).set_channels(1) + noise
    return audio.set_frame_rate(16000)


def test_utterances_are_found_measured_and_normalised(recording: AudioSegment) -> None:
    segments = preprocess(recording)
    kept = [s for s in segments if s.drop_reason is None]
    assert abs(len(kept) - len(PHRASES)) <= 1  # espeak's longer pauses may split one phrase
    for seg in kept:
        assert 1.0 <= seg.duration_s <= 15.0
        assert seg.snr_db is not None and seg.snr_db > 20
        assert seg.clipping_ratio == 0.0
        back = AudioSegment.from_wav(io.BytesIO(wav_bytes(seg.audio)))
        assert (back.frame_rate, back.channels, back.sample_width) == (22050, 1, 2)
        assert back.dBFS == pytest.approx(-20.0, abs=1.0) or back.max_dBFS == pytest.approx(-1.0, abs=0.2)
        assert back.max_dBFS <= -0.9


def test_options_change_rate_and_limits(recording: AudioSegment) -> None:
    segments = preprocess(recording, AudioOptions(sample_rate=16000, max_s=1.2, min_s=0.3))
    kept = [s for s in segments if s.drop_reason is None]
    assert all(s.duration_s <= 1.2 + 1e-6 for s in segments)
    assert len(kept) > len(PHRASES)  # long utterances were split to the limit
    assert all(s.audio is not None and s.audio.frame_rate == 16000 for s in kept)


def test_named_drop_reasons() -> None:
    silence_then_blip = AudioSegment.silent(2000, 22050) + WhiteNoise().to_audio_segment(300, volume=-10)
    silence_then_blip += AudioSegment.silent(2000, 22050)
    (blip,) = preprocess(silence_then_blip)
    assert blip.drop_reason == "too_short" and blip.audio is None
    loud = WhiteNoise().to_audio_segment(3000, volume=0).set_frame_rate(22050).set_channels(1) + 30
    assert {
        s.drop_reason for s in preprocess(AudioSegment.silent(500) + loud + AudioSegment.silent(500))
    } == {"clipped"}


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "ipod", "webm"])
def test_common_containers_decode(recording: AudioSegment, fmt: str) -> None:
    buffer = io.BytesIO()
    codec = {"ogg": "libopus", "webm": "libopus", "ipod": "aac"}.get(fmt)
    recording.export(buffer, format=fmt, codec=codec)
    decoded = decode(buffer.getvalue(), f"voice.{fmt}")
    assert abs(len(decoded) - len(recording)) < 200
    assert abs(len([s for s in preprocess(decoded) if s.drop_reason is None]) - len(PHRASES)) <= 1


def test_corrupt_audio_is_one_line() -> None:
    with pytest.raises(AudioError, match=r"^broken.m4a: undecodable audio \(") as info:
        decode(b"\x00\x01 not audio at all" * 50, "broken.m4a")
    assert "\n" not in str(info.value)
    with pytest.raises(AudioError, match="empty file"):
        decode(b"", "empty.wav")


def test_recycled_recordings_become_segments_in_the_lake(tmp_path: Path, recording: AudioSegment) -> None:
    from parsers.platform import synth
    from tasks.ingest.platform import stage_chat_file, write_landing
    from tasks.ingest.recycling import commit_pass, plan_pass, route_pass
    from tasks.voice.recordings import process_owner_recordings

    storage = open_storage(f"file://{tmp_path}/lake")
    rooms = [synth.Room("room-v", "private", "u-v1", "김순자", "엄마", "voice-owner", "민지네", ())]
    files = synth.day_files(rooms, date(2024, 3, 1), events=20, voice=2)
    audio_keys = sorted(k for k in files if k.endswith(".wav"))
    files[audio_keys[0]] = wav_bytes(recording)  # one real recording with three utterances
    files[audio_keys[1]] = b"RIFF....garbage"  # and one broken upload
    write_landing(storage, synth.consent_files(rooms))
    write_landing(storage, files)
    plan = plan_pass(storage, date(2024, 3, 1))
    commit_pass(
        storage, plan, route_pass(storage, plan, [stage_chat_file(storage, k) for k in plan.chat_files])
    )

    summary = process_owner_recordings(storage, "voice-owner")
    assert (summary.recordings, summary.quarantined) == (1, 1)
    assert abs(summary.segments_kept - len(PHRASES)) <= 1
    (seg_key,) = storage.list("voice/owner=voice-owner/segments/")
    rows = pq.read_table(io.BytesIO(storage.read_bytes(seg_key))).to_pylist()
    kept = [r for r in rows if r["drop_reason"] is None]
    assert all(r["audio_uri"] and r["speaker"] == "엄마" and r["sample_rate"] == 22050 for r in kept)
    (q_key,) = [k for k in storage.list("quarantine/voice-owner/") if "voice-" in k]
    (bad,) = pq.read_table(io.BytesIO(storage.read_bytes(q_key))).to_pylist()
    assert "undecodable audio" in bad["reason"] and "\n" not in bad["reason"]
    again = process_owner_recordings(storage, "voice-owner")
    assert again.skipped == 1 and again.recordings == 0  # done recordings are not redone


def test_voice_dataset_is_versioned_by_content(tmp_path: Path, recording: AudioSegment) -> None:
    from tasks.voice.audio import AudioOptions
    from tasks.voice.recordings import VoiceSummary, build_voice_dataset, process_recording

    storage = open_storage(f"file://{tmp_path}/lake")
    with storage.open_write("landing/platform/voice/audio/r1.wav") as handle:
        handle.write(wav_bytes(recording))
    rec = {"recording_id": "r1", "audio_key": "landing/platform/voice/audio/r1.wav", "speaker": "엄마",
           "transcript": None, "line_no": 1}  # fmt: skip
    process_recording(storage, "vo", rec, AudioOptions(), VoiceSummary("vo"))
    first = build_voice_dataset(storage, "vo", "엄마")
    assert first["created"] and first["version"] == 1 and first["segments"] >= 2 and first["minutes"] > 0
    again = build_voice_dataset(storage, "vo", "엄마")
    assert not again["created"] and again["content_hash"] == first["content_hash"]
    with pytest.raises(Exception, match="has no kept utterances"):
        build_voice_dataset(storage, "vo", "아빠")


def test_a_recordings_transcript_is_shared_out_over_its_utterances(
    tmp_path: Path, recording: AudioSegment
) -> None:
    from tasks.voice.audio import AudioOptions
    from tasks.voice.recordings import VoiceSummary, process_recording

    storage = open_storage(f"file://{tmp_path}/lake")
    with storage.open_write("landing/rec.wav") as handle:
        handle.write(wav_bytes(recording))
    transcript = "안녕하세요, 오늘 날씨가 참 좋네요. 밥은 먹었니? 따뜻하게 입고 다녀. 주말에 집에 올 수 있어"
    rec = {"recording_id": "r1", "audio_key": "landing/rec.wav", "speaker": "엄마", "transcript": transcript}
    process_recording(storage, "tr", rec, AudioOptions(), VoiceSummary("tr"))
    rows = pq.read_table(io.BytesIO(storage.read_bytes("voice/owner=tr/segments/r1.parquet"))).to_pylist()
    texts = [r["transcript"] for r in rows if r["drop_reason"] is None]
    assert len(texts) == 3 and all(texts)
    assert [t.replace(",", "").replace(".", "").replace("?", "") for t in texts] == PHRASES
