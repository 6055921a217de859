"""Speech recognition from a local model directory: words for audio that came without any.

KakaoTalk voice messages (and uploads without a `.txt`) carry no transcript, so they cannot
teach text-to-speech. With `REMEMBERME_ASR_MODEL` set to a local Hugging Face speech-recognition
directory (Whisper, wav2vec2-CTC, ...: whatever `transformers`' automatic-speech-recognition
pipeline loads), every kept utterance without a transcript is transcribed. Nothing downloads
(`HF_HUB_OFFLINE`); audio is resampled here to the model's rate, so no torchaudio is needed.
The segment row records `transcript_source = "asr"`, so a model card can say how much of the
voice learned from machine transcripts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from pydub import AudioSegment

from parsers.errors import InputError


class Transcriber:
    """One loaded speech-recognition model; call it with an utterance."""

    def __init__(self, directory: str) -> None:
        """Load the model in `directory` (config.json and weights; a processor/tokenizer beside them)."""
        path = Path(directory)
        if not (path / "config.json").is_file():
            raise InputError(directory, "not a speech-recognition model directory (no config.json)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import pipeline
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            self._pipe: Any = pipeline("automatic-speech-recognition", model=str(path), device=-1)
        except (OSError, ValueError, KeyError) as exc:
            summary = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(directory, f"cannot load a speech-recognition model: {summary}") from exc
        self.name = path.name
        extractor = self._pipe.feature_extractor
        if extractor is None:
            raise InputError(directory, "the model has no feature extractor (save its processor beside it)")
        self.rate = int(extractor.sampling_rate)

    def __call__(self, audio: AudioSegment) -> str | None:
        """The words of one utterance, or None when the model hears none."""
        audio = audio.set_channels(1).set_frame_rate(self.rate).set_sample_width(2)
        samples = np.frombuffer(audio.raw_data, dtype=np.int16).astype(np.float32) / 32768
        text = str(self._pipe({"raw": samples, "sampling_rate": self.rate})["text"]).strip()
        return text or None


def load_transcriber(directory: str | None) -> Transcriber | None:
    """The configured transcriber, or None when none is configured."""
    return Transcriber(directory) if directory else None
