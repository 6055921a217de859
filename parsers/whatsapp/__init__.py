"""WhatsApp chat exports (see export.py)."""
