"""Write tasks/voice/reference_voices.json: speaker embeddings of fixed voices that are nobody's persona.

    python bench/reference_voices.py

The voice gate asks whether a synthesised sentence is nearer its persona's real voice than any other
voice known; these are the voices every persona is told apart from besides its owner's other
personas. espeak-ng voices of several languages and variants (the only voices that can be made
here), each the centroid of four sentences, embedded by the project's speaker encoder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.voice.similarity import (  # noqa: E402 (after the path insert)
    REFERENCE_VOICES,
    Utterance,
    centroid,
    encoder_weights,
    load_encoder,
    wav_samples,
)

VOICES = [("ko+m1", 40, 150), ("ko+f4", 80, 175), ("en-us", 50, 165), ("en+m7", 35, 150), ("de+f2", 65, 170),
          ("es", 55, 160), ("ja+m3", 45, 155), ("fr+f3", 70, 180)]  # fmt: skip
SENTENCES = ["오늘은 날씨가 정말 좋네요", "주말에 가족들과 산책을 했어요", "밥은 먹었니 따뜻하게 입고 다녀",
             "the weather is lovely today"]  # fmt: skip


def main() -> None:
    """Synthesise, embed, write."""
    weights = encoder_weights()
    if weights is None:
        raise SystemExit("install the speaker encoder first (make setup)")
    encoder = load_encoder(str(weights))
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for voice, pitch, rate in VOICES:
            recordings = []
            for i, text in enumerate(SENTENCES):
                path = Path(tmp) / f"{voice}-{i}.wav"
                command = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(rate), "-w", str(path), text]
                subprocess.run(command, check=True, capture_output=True)
                samples, rate_hz = wav_samples(path.read_bytes())
                recordings.append(Utterance(text, samples, rate_hz))
            out[f"espeak:{voice}:p{pitch}:s{rate}"] = [
                round(float(x), 6) for x in centroid(encoder, recordings)
            ]
    REFERENCE_VOICES.write_text(json.dumps(out, indent=0) + "\n")
    print(f"{len(out)} reference voices -> {REFERENCE_VOICES.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
