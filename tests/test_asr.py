"""Speech recognition from a local directory fills in the words KakaoTalk voice messages lack."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pydub import AudioSegment
from pydub.generators import WhiteNoise

from infra.settings import Settings
from infra.storage import open_storage
from parsers.errors import InputError
from tasks.ingest.uploads import ingest_export
from tasks.voice.asr import Transcriber, load_transcriber
from tasks.voice.recordings import restore_voice
from tests.asr_support import save_tiny_asr
from tests.voice_support import export_with_voice_message

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("espeak-ng")),
    reason="ffmpeg and espeak-ng come from Debian (make test installs them)",
)


@pytest.fixture(scope="module")
def asr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_asr(tmp_path_factory.mktemp("asr") / "tiny-ctc")


def _speech(text: str, tmp: Path) -> AudioSegment:
    out = tmp / "s.wav"
    subprocess.run(["espeak-ng", "-v", "ko", text, "-w", str(out)], check=True)
    noise = WhiteNoise().to_audio_segment(duration=600, volume=-65).set_frame_rate(22050).set_channels(1)
    return noise + AudioSegment.from_wav(out).set_frame_rate(22050).set_channels(1) + noise


def test_a_local_model_transcribes_an_utterance(asr_dir: Path, tmp_path: Path) -> None:
    transcriber = Transcriber(str(asr_dir))
    assert transcriber.rate == 16000
    assert transcriber(_speech("밥은 먹었니", tmp_path)) == "가"  # the tiny model's head prefers 가
    other = Transcriber(str(save_tiny_asr(tmp_path / "hears-bap", word="밥")))
    assert other(_speech("밥은 먹었니", tmp_path)) == "밥"  # the words come from the model, not the code


def test_kakaotalk_voice_messages_get_words_now_or_on_a_later_run(asr_dir: Path, tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    ingest_export(export_with_voice_message(tmp_path, _speech("밥은 먹었니 따뜻하게 입고 다녀", tmp_path)),
                  "asr-owner", storage, Settings())  # fmt: skip
    before = restore_voice(storage, "asr-owner", "엄마", ["엄마"], [])
    assert before["dataset"]["with_transcript"] == 0  # no recogniser: voice messages have no words

    after = restore_voice(storage, "asr-owner", "엄마", ["엄마"], [], transcriber=Transcriber(str(asr_dir)))
    assert after["summary"]["skipped"] == 1 and after["summary"]["transcribed"] == 1  # filled in place
    dataset = after["dataset"]
    assert dataset["created"] is True and dataset["version"] == 2  # new words, new content hash
    assert dataset["with_transcript"] == 1 and dataset["transcripts_by_source"] == {"asr": 1}
    (key,) = storage.list("voice/owner=asr-owner/segments/")
    (row,) = [r for r in pq.read_table(io.BytesIO(storage.read_bytes(key))).to_pylist() if r["audio_uri"]]
    assert (row["transcript"], row["transcript_source"]) == ("가", "asr")
    again = restore_voice(storage, "asr-owner", "엄마", ["엄마"], [], transcriber=Transcriber(str(asr_dir)))
    assert again["summary"]["transcribed"] == 0 and again["dataset"]["created"] is False  # tried once


def test_a_directory_that_is_not_a_recogniser_is_one_line(tmp_path: Path) -> None:
    assert load_transcriber(None) is None
    with pytest.raises(InputError, match=r"no config\.json"):
        load_transcriber(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "no-such-model"}')
    with pytest.raises(InputError, match="cannot load a speech-recognition model") as info:
        load_transcriber(str(tmp_path))
    assert "\n" not in str(info.value)
