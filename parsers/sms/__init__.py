"""Android SMS/MMS backups (see export.py)."""
