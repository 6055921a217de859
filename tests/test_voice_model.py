"""Per-user voice checkpoints on espeak-ng speech: loss falls, ONNX parity, `speak` writes a real WAV."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import pytest
from pydub import AudioSegment
from pydub.generators import WhiteNoise

from infra.registry import Registry
from infra.storage import open_storage
from tasks.audio import AudioOptions, wav_bytes
from tasks.voice import VoiceSummary, build_voice_dataset, process_recording
from tasks.voice_model import speak, train_user_voice, train_voice_base

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("espeak-ng")),
    reason="ffmpeg and espeak-ng come from Debian (make test installs them)",
)
LINES = ["밥은 먹었니", "따뜻하게 입고 다녀", "주말에 집에 올 수 있어", "오늘 날씨가 참 좋네요", "사랑해 우리 딸",
         "감기 조심하고 일찍 자라", "김치 보내줄게", "잘 도착했니"]  # fmt: skip


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
    assert Registry(storage).aliases("vo", "엄마", "voice")["latest"] == 1

    base = train_voice_base(storage, steps=30)  # a multi-speaker base from every voice dataset
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


def test_speak_cli(tmp_path: Path, capsys) -> None:
    from flows.cli import main

    assert main(["speak", "안녕", "--owner", "nobody", "--persona", "엄마", "-o", str(tmp_path / "x.wav"),
                 "--lake", f"file://{tmp_path}/lake"]) == 1  # fmt: skip
    assert "no published voice model for nobody/엄마" in capsys.readouterr().err
