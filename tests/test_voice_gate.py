"""Does the voice sound like the person? The speaker encoder, the scores in the card, and the voice gate.

Speech is made by espeak-ng (two Korean voices of different pitch and rate); the encoder's weights
come from the resemblyzer wheel that `make setup` installs without its code.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydub import AudioSegment
from pydub.generators import WhiteNoise

from infra.registry import Registry
from infra.settings import Settings
from infra.storage import Storage, open_storage
from models.speaker import partial_slices, slaney_filters
from tasks.voice.audio import AudioOptions, wav_bytes
from tasks.voice.recordings import VoiceSummary, build_voice_dataset, process_recording
from tasks.voice.similarity import Utterance, encoder_weights, load_encoder, wav_samples

LINES = ["밥은 먹었니", "따뜻하게 입고 다녀", "주말에 집에 올 수 있어", "오늘 날씨가 참 좋네요", "사랑해 우리 딸",
         "감기 조심하고 일찍 자라", "김치 보내줄게", "잘 도착했니", "우산 챙겨 가라", "전화 좀 자주 해"]  # fmt: skip
MOM = ("ko+f1", 50, 160)
DAD = ("ko+m3", 40, 145)
needs_speech = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("espeak-ng") and encoder_weights()),
    reason="ffmpeg and espeak-ng come from Debian, the encoder weights from resemblyzer (make test installs them)",
)


def test_slaney_filters_and_windows_have_resemblyzers_shape() -> None:
    filters = slaney_filters()
    assert filters.shape == (40, 201) and (filters >= 0).all()
    assert (filters.sum(1) > 0).all()  # every band sees some frequency
    # 3 s at 1.3 windows a second: a 1.6 s window every round(16000 / 1.3 / 160) = 77 frames; the
    # last covers (48000 - 154 * 160) / 25600 = 91 % of real audio (>= 75 %), so it stays.
    assert [s.start for s in partial_slices(16_000 * 3)] == [0, 77, 154]
    assert len(partial_slices(100)) == 1  # a short utterance still gets one window


def _say(tmp: Path, voice: tuple[str, int, int], text: str, name: str) -> Path:
    out = tmp / f"{name}.wav"
    code, pitch, rate = voice
    subprocess.run(
        ["espeak-ng", "-v", code, "-p", str(pitch), "-s", str(rate), "-w", str(out), text], check=True
    )
    return out


@needs_speech
def test_the_encoder_tells_two_voices_apart(tmp_path: Path) -> None:
    encoder = load_encoder(str(encoder_weights()))
    mom = [
        encoder.embed(*wav_samples(_say(tmp_path, MOM, t, f"m{i}").read_bytes()))
        for i, t in enumerate(LINES[:4])
    ]
    dad = [
        encoder.embed(*wav_samples(_say(tmp_path, DAD, t, f"d{i}").read_bytes()))
        for i, t in enumerate(LINES[:4])
    ]
    assert all(abs(float(np.linalg.norm(e)) - 1) < 1e-5 for e in mom + dad)
    same = np.mean([float(a @ b) for i, a in enumerate(mom) for b in mom[i + 1 :]])
    across = np.mean([float(a @ b) for a in mom for b in dad])
    assert same > 0.7 and same - across > 0.1, (same, across)  # short sentences: ~1 s each


def _voice(
    storage: Storage, tmp: Path, owner: str, persona: str, voice: tuple[str, int, int]
) -> list[Utterance]:
    """Record `LINES` in `voice` as `persona`'s platform recordings; their voice dataset; the utterances."""
    noise = WhiteNoise().to_audio_segment(duration=400, volume=-65).set_frame_rate(22050).set_channels(1)
    summary = VoiceSummary(owner)
    utterances = []
    for i, text in enumerate(LINES):
        spoken = (
            AudioSegment.from_wav(_say(tmp, voice, text, f"{persona}{i}"))
            .set_frame_rate(22050)
            .set_channels(1)
        )
        key = f"landing/platform/voice/audio/{persona}-{i}.wav"
        with storage.open_write(key) as handle:
            handle.write(wav_bytes(noise + spoken + noise))
        rec = {
            "recording_id": f"{persona}{i}",
            "audio_key": key,
            "speaker": persona,
            "transcript": text,
            "line_no": i,
        }
        process_recording(storage, owner, rec, AudioOptions(min_s=0.5), summary)
        utterances.append(Utterance(text, *wav_samples(wav_bytes(spoken))))
    build_voice_dataset(storage, owner, persona)
    return utterances


@pytest.mark.slow
@needs_speech
def test_the_gate_serves_her_voice_and_refuses_one_that_sounds_like_someone_else(tmp_path: Path) -> None:
    from tasks.runs.markdown import voice_model_card
    from tasks.voice.voice_gate import judge_voice
    from tasks.voice.voice_model import train_user_voice

    storage = open_storage(f"file://{tmp_path}/lake")
    mom = _voice(storage, tmp_path, "vg", "엄마", MOM)
    _voice(storage, tmp_path, "vg", "아빠", DAD)
    dad_model = train_user_voice(storage, "vg", "아빠", 1, steps=120)
    first = train_user_voice(storage, "vg", "엄마", 1, steps=120)
    scores = first["similarity"]["candidate"]
    assert first["promotion"]["promote"], first["promotion"]
    assert scores["competitors"] >= 9  # eight reference voices and 아빠
    assert scores["identified"] >= 0.5 and scores["similarity"] > 0.5 and scores["real_similarity"] > 0.5, (
        scores
    )
    assert Registry(storage).aliases("vg", "엄마", "voice")["production"] == first["version"]
    assert "units.npz" in first["files"]  # her own recorded sounds travel with the voice
    assert scores["similarity"] > scores["real_similarity"] - 0.05, scores  # and keep it close to hers
    card = voice_model_card(first)
    assert "speaker similarity to them" in card and "- gate: served" in card

    # A version that speaks with someone else's voice (아빠's model, offered as hers): refused, and why.
    wrong = Registry(storage).load("vg", "아빠", "voice", dad_model["version"]).files
    n_val = max(1, len(mom) // 10)
    found, verdict = judge_voice(storage, "vg", "엄마", wrong, mom[:n_val], mom[n_val:], Settings())
    assert not verdict["promote"], verdict
    assert "sounds like nobody" in verdict["reason"] or "sounds less like 엄마" in verdict["reason"]
    assert found is not None and found["candidate"]["similarity"] < scores["similarity"]

    # The tolerance is the operator's: with the same voice on both sides the candidate passes.
    again, verdict = judge_voice(
        storage,
        "vg",
        "엄마",
        Registry(storage).load("vg", "엄마", "voice").files,
        mom[:n_val],
        mom[n_val:],
        Settings(),
    )
    assert verdict["promote"] and again is not None, verdict


def test_a_short_utterance_is_embedded_too() -> None:
    """Fewer 30 ms windows than the smoothing kernel (under 240 ms): still one embedding, no error."""
    from models.speaker import preprocess

    rng = np.random.default_rng(1)
    for seconds in (0.05, 0.18, 0.3):
        samples = (rng.normal(size=int(16_000 * seconds)) * 0.1).astype(np.float32)
        assert len(preprocess(samples, 16_000)) > 0
    if encoder_weights():
        embedding = load_encoder(str(encoder_weights())).embed(samples, 16_000)
        assert abs(float(np.linalg.norm(embedding)) - 1) < 1e-5


def test_a_production_move_lost_to_a_kill_is_finished_but_a_rollback_is_not_undone(tmp_path: Path) -> None:
    """Publish, then move production: a process killed between the two is finished by the next pass."""
    from tasks.voice.voice_gate import finish_promotion

    storage = open_storage(f"file://{tmp_path}/lake")
    registry = Registry(storage)

    def publish(promote: bool) -> int:
        manifest = registry.publish(
            "vk", "엄마", "voice", {"weights.pt": b"w"}, {"promotion": {"promote": promote}}
        )
        return int(manifest["version"])

    first = publish(True)  # killed here: published, production never moved
    assert "production" not in registry.aliases("vk", "엄마", "voice")
    assert finish_promotion(storage, "vk", "엄마") == first
    assert registry.aliases("vk", "엄마", "voice")["production"] == first
    assert finish_promotion(storage, "vk", "엄마") is None  # nothing left to finish

    second = publish(True)
    registry.set_alias("vk", "엄마", "voice", "production", second)
    registry.set_alias("vk", "엄마", "voice", "production", first)  # an operator's rollback
    assert finish_promotion(storage, "vk", "엄마") is None
    assert registry.aliases("vk", "엄마", "voice")["production"] == first

    publish(False)  # refused by the gate: never moved to
    assert finish_promotion(storage, "vk", "엄마") is None
    assert registry.aliases("vk", "엄마", "voice")["production"] == first
