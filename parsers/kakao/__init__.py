"""KakaoTalk exports: every variant detected from content (see formats.py)."""
