"""The code version recorded in every manifest and ingest marker."""

from __future__ import annotations

from typing import Final

#: Bump when parsing, cleaning or training changes what the same input produces: completed
#: ingests and cached steps of an older version are redone, never reused.
CODE_VERSION: Final = "rememberme-0.2.0"
