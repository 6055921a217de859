"""Parsers for the memorial platform's landing data (chat events, voice manifests, consent)."""
