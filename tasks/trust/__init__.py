"""The trust boundary: redaction of personal numbers, zones (original vs redacted text), consent."""
