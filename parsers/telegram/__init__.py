"""Telegram Desktop JSON exports (see export.py)."""
