"""The parameters that shape a dataset, with no heavy imports (the CLI reads its defaults here)."""

from __future__ import annotations

from dataclasses import dataclass

#: Fewest training pairs the pairs gate accepts for a persona.
MIN_PAIRS = 20


@dataclass(frozen=True)
class TurnOptions:
    """Parameters of turn building (recorded in the dataset manifest)."""

    burst_gap_s: int = 120
    session_gap_s: int = 3600
    context_turns: int = 6
    validation_fraction: float = 0.1
    seed: int = 13
