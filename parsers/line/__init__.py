"""LINE chat histories (see export.py)."""
