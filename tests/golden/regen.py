"""Rewrite the expected output of every golden sample: `python tests/golden/regen.py`.

Review the diff by eye before committing: the expected files are the specification.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent))

from tests.golden_support import SAMPLES, parse_golden  # noqa: E402


def main() -> None:
    for sample in SAMPLES:
        result = parse_golden(HERE / sample)
        target = HERE / f"{sample}.expected.json"
        target.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        counts = f"{len(result['messages'])} messages, {len(result['quarantine'])} quarantined"
        print(f"wrote {target.name}: {counts}")


if __name__ == "__main__":
    main()
