"""Voice preprocessing speed as a multiple of real time (target >= 100x).

    python bench/audio.py [--minutes 10] [--format mp3]

Builds a recording of espeak-ng speech with quiet gaps (about `--minutes` long), encodes it in
`--format` (mp3 like most uploads; m4a/ogg also work), then times what the pipeline does to one
upload: decode with ffmpeg, mono, resample to 22,050 Hz, split into utterances, measure, normalise
and encode every kept utterance as WAV. Prints audio seconds per wall second.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydub import AudioSegment
from pydub.generators import WhiteNoise

from tasks.voice.audio import decode, preprocess, wav_bytes

PHRASES = ["안녕하세요 오늘 날씨가 참 좋네요", "밥은 먹었니 따뜻하게 입고 다녀", "주말에 집에 올 수 있어"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--format", default="mp3")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rm-bench-audio-"))
    noise = WhiteNoise().to_audio_segment(duration=1200, volume=-60).set_frame_rate(22050).set_channels(1)
    block = noise
    for i, phrase in enumerate(PHRASES):
        out = tmp / f"{i}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", phrase, "-w", str(out)], check=True)
        block += AudioSegment.from_wav(out).set_frame_rate(22050).set_channels(1) + noise
    audio = block * max(1, int(args.minutes * 60 * 1000 / len(block)))
    audio = audio.set_frame_rate(44100).set_channels(2)  # a typical upload: 44.1 kHz stereo
    buffer = io.BytesIO()
    audio.export(buffer, format=args.format)
    data = buffer.getvalue()
    seconds = len(audio) / 1000

    start = time.perf_counter()
    decoded = decode(data, f"bench.{args.format}")
    t_decode = time.perf_counter() - start
    segments = preprocess(decoded)
    t_split = time.perf_counter() - start - t_decode
    kept = [wav_bytes(s.audio) for s in segments if s.audio is not None]
    total = time.perf_counter() - start
    print(f"{seconds / 60:.1f} min of {args.format} ({len(data) / 1e6:.1f} MB): {len(kept)} utterances kept "
          f"of {len(segments)}")  # fmt: skip
    print(f"decode {t_decode:.2f} s, resample+split+measure+normalise {t_split:.2f} s, "
          f"wav encode {total - t_decode - t_split:.2f} s")  # fmt: skip
    print(f"preprocessing speed: {seconds / total:.0f}x real time (target >= 100x)")


if __name__ == "__main__":
    main()
