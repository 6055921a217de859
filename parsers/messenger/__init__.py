"""Facebook Messenger and Instagram JSON exports (see export.py)."""
