"""The production stack's declarations and its rehearsal without containers (rehearsal.py)."""
