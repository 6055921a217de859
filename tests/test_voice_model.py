"""Per-user voice checkpoints on espeak-ng speech: loss falls, ONNX parity, `speak` writes a real WAV."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import wave
from pathlib import Path

import pytest
import torch
from pydub import AudioSegment
from pydub.generators import WhiteNoise

from infra.registry import Registry
from infra.storage import open_storage
from models.voice import AcousticModel, VoiceConfig
from parsers.errors import InputError
from tasks.runs.markdown import voice_model_card
from tasks.voice.audio import AudioOptions, wav_bytes
from tasks.voice.recordings import VoiceSummary, build_voice_dataset, process_recording
from tasks.voice.voice_model import import_voice_base, speak, train_user_voice, train_voice_base
from tests.voice_support import export_with_voice_message

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("espeak-ng")),
    reason="ffmpeg and espeak-ng come from Debian (make test installs them)",
)
LINES = ["밥은 먹었니", "따뜻하게 입고 다녀", "주말에 집에 올 수 있어", "오늘 날씨가 참 좋네요", "사랑해 우리 딸",
         "감기 조심하고 일찍 자라", "김치 보내줄게", "잘 도착했니"]  # fmt: skip


@pytest.mark.slow
def test_voice_checkpoint_trains_exports_and_speaks(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    noise = WhiteNoise().to_audio_segment(duration=600, volume=-65).set_frame_rate(22050).set_channels(1)
    summary = VoiceSummary("vo")
    for i, text in enumerate(LINES):  # one utterance per recording: the transcript attaches
        out = tmp_path / f"{i}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", text, "-w", str(out)], check=True)
        audio = noise + AudioSegment.from_wav(out).set_frame_rate(22050).set_channels(1) + noise
        key = f"landing/platform/voice/audio/{i}.wav"
        with storage.open_write(key) as handle:
            handle.write(wav_bytes(audio))
        rec = {"recording_id": f"r{i}", "audio_key": key, "speaker": "엄마", "transcript": text, "line_no": i}
        process_recording(storage, "vo", rec, AudioOptions(min_s=0.5), summary)
    dataset = build_voice_dataset(storage, "vo", "엄마")
    assert dataset["with_transcript"] == len(LINES)

    manifest = train_user_voice(storage, "vo", "엄마", dataset["version"], steps=80)
    curve = manifest["curve"]
    assert curve[-1]["train_loss"] < curve[0]["train_loss"] * 0.8  # the loss falls
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    assert manifest["kind"] == "voice" and manifest["dataset"]["version"] == 1
    assert {"model.onnx", "durations.onnx"} <= set(manifest["files"])  # speak places frames by durations
    assert 0 <= manifest["metrics"]["val_length_error"] < 1
    card = voice_model_card(manifest)
    assert (
        f"| transcribed utterances | {len(LINES)} |" in card
        and "learned durations" in card
        and "robotic" in card
    )
    assert Registry(storage).aliases("vo", "엄마", "voice")["latest"] == 1

    def consent(base_training: bool) -> None:  # her platform consent, as the backend lands it
        record = {"consent_id": "c-vo", "owner_id": "vo", "subject_id": "u-mom", "persona": "엄마",
                  "granted_at": "2024-01-01T09:00:00+09:00", "base_training": base_training}  # fmt: skip
        with storage.open_write("landing/platform/consent/consents.jsonl") as handle:
            handle.write(json.dumps(record, ensure_ascii=False).encode())

    consent(False)
    with pytest.raises(InputError, match="at least 4"):
        train_voice_base(storage, steps=30)  # her consent does not cover the shared base
    consent(True)
    base = train_voice_base(storage, steps=30)  # a multi-speaker base from every consented dataset
    assert base["corpus"] == {"speakers": 1, "utterances": len(LINES)} and base["kind"] == "base"
    adapted = train_user_voice(storage, "vo", "엄마", dataset["version"], steps=20)
    assert adapted["base_version"] == base["version"] and adapted["version"] == 2

    data = speak(storage, "vo", "엄마", "주말에 집에 올 수 있어", "latest")
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22050)
        seconds = wav.getnframes() / wav.getframerate()
    spoken = AudioSegment.from_wav(tmp_path / "2.wav")
    assert 0.4 * spoken.duration_seconds <= seconds <= 2.5 * spoken.duration_seconds  # plausible length
    assert AudioSegment.from_wav(io.BytesIO(data)).dBFS > -40  # not silence

    # A base of another shape imported from a folder: the user's voice adapts it in its own shape.
    folder = tmp_path / "imported-base"
    folder.mkdir()
    other = AcousticModel(VoiceConfig(channels=64), seed=5)
    torch.save(other.state_dict(), folder / "weights.pt")
    (folder / "config.json").write_text(json.dumps(other.config.to_dict()))
    imported = import_voice_base(storage, str(folder))
    from_imported = train_user_voice(storage, "vo", "엄마", dataset["version"], steps=10)
    assert from_imported["base_version"] == imported["version"] == 2
    assert from_imported["hyper_parameters"]["model"]["channels"] == 64


def test_speak_cli(tmp_path: Path, capsys) -> None:
    from flows.cli import main

    assert main(["speak", "안녕", "--owner", "nobody", "--persona", "엄마", "-o", str(tmp_path / "x.wav"),
                 "--lake", f"file://{tmp_path}/lake"]) == 1  # fmt: skip
    assert "no published voice model for nobody/엄마" in capsys.readouterr().err


def test_restore_voice_uses_uploads_and_kakaotalk_voice_messages(tmp_path: Path) -> None:

    from infra.settings import Settings
    from tasks.ingest.uploads import ingest_export
    from tasks.voice.recordings import restore_voice

    speech = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "밥은 먹었니 따뜻하게 입고 다녀", "-w", str(speech)], check=True)
    noise = WhiteNoise().to_audio_segment(duration=600, volume=-65).set_frame_rate(22050).set_channels(1)
    audio = noise + AudioSegment.from_wav(speech).set_frame_rate(22050).set_channels(1) + noise
    export = export_with_voice_message(tmp_path, audio)
    storage = open_storage(f"file://{tmp_path}/lake")
    ingest_export(export, "kv", storage, Settings())

    uploaded = [("hello.wav", wav_bytes(audio), "밥은 먹었니 따뜻하게 입고 다녀")]
    result = restore_voice(storage, "kv", "엄마", ["엄마"], uploaded)
    assert result["summary"]["recordings"] == 2 and result["summary"]["quarantined"] == 0
    dataset = result["dataset"]
    assert dataset["recordings"] == 2 and dataset["with_transcript"] == 1  # KakaoTalk audio has no text
    again = restore_voice(storage, "kv", "엄마", ["엄마"], uploaded)
    assert again["summary"]["skipped"] == 2 and again["dataset"]["created"] is False
