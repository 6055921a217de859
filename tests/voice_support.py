"""A KakaoTalk zip export in which the persona sent one voice message (AAC in .m4a, as the app does)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from pydub import AudioSegment


def export_with_voice_message(tmp: Path, speech: AudioSegment) -> Path:
    """`tmp/export.zip`: an Android export where 엄마 sends `speech` as a voice message."""
    m4a = io.BytesIO()
    speech.export(m4a, format="ipod", codec="aac")
    chat = (
        "엄마 님과 카카오톡 대화\n저장한 날짜 : 2024년 3월 2일 오전 9:00\n\n"
        "2024년 3월 1일 오후 8:53, 나 : 엄마 목소리 듣고 싶어\n"
        "2024년 3월 1일 오후 8:54, 엄마 : 음성메시지\n"
    ).encode()
    export = tmp / "export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr("KakaoTalkChats.txt", chat)
        zf.writestr("20240301_205410.m4a", m4a.getvalue())
    return export
