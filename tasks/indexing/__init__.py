"""Search memory: owners' messages and personas' context->reply pairs in the index (redacted)."""
