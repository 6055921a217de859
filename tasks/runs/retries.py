"""Work a recycling pass could not finish, kept in the recycling state for the next passes.

One failing persona (or owner) must not hold back anybody else: the pass completes, publishes what
succeeded, moves the watermark (the failed piece's data is already in its owner's lake, so nothing
is lost) and records the piece here. The next pass does the recorded pieces again, and only them
when nothing new arrived. A piece that failed `MAX_ATTEMPTS` passes in a row is *parked*: reported
by every pass, no longer retried by itself; new data for it, or `recycle --retry-failed` after a
fix, tries it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

#: Passes in a row a piece may fail before it is parked.
MAX_ATTEMPTS = 3

#: What a piece of work is: a persona's text refresh, its voice refresh, an owner's voice
#: preprocessing, or the indexing of an owner's new message parts.
WORK_KINDS = ("text", "voice", "voice-prep", "index")


@dataclass
class RetryItem:
    """One failed piece of a pass and what the next pass needs to do it again."""

    work: str
    owner_id: str
    persona: str | None = None
    #: `index` only: the message parts still to be indexed.
    parts: list[str] = field(default_factory=list)
    error: str = ""
    attempts: int = 0
    first_failed: str = ""
    last_failed: str = ""

    @property
    def key(self) -> str:
        """Identity of the piece across passes."""
        return f"{self.work}:{self.owner_id}:{self.persona or ''}"

    @property
    def parked(self) -> bool:
        """Failed too often to be retried by itself."""
        return self.attempts >= MAX_ATTEMPTS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (plus `parked`) for the state, artifacts and the CLI."""
        return {**asdict(self), "parked": self.parked}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RetryItem:
        """Read what `to_dict` wrote (unknown keys ignored)."""
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


def work_key(work: str, owner_id: str, persona: str | None = None) -> str:
    """The key of a piece without building it."""
    return f"{work}:{owner_id}:{persona or ''}"


def due(items: dict[str, RetryItem], retry_parked: bool = False) -> list[RetryItem]:
    """The recorded pieces this pass retries: all but the parked ones (those too when asked)."""
    return [item for _, item in sorted(items.items()) if retry_parked or not item.parked]


def settle(
    previous: dict[str, RetryItem], attempted: Iterable[str | RetryItem], failed: list[RetryItem], as_of: str
) -> dict[str, RetryItem]:
    """The recorded pieces after a pass that attempted `attempted` and saw `failed` fail.

    A piece that succeeded is dropped; one that failed counts one more attempt; one that was not
    attempted (parked, nothing new) stays as it was. An `index` piece owes message parts: only the
    parts an attempted piece carried are paid (a bare key carries none), so parts recorded earlier
    and never indexed stay recorded until a pass indexes them.
    """
    covered: dict[str, set[str]] = {}
    for piece in attempted:
        key = piece if isinstance(piece, str) else piece.key
        covered.setdefault(key, set()).update(() if isinstance(piece, str) else piece.parts)
    out: dict[str, RetryItem] = {}
    for key, item in previous.items():
        if key not in covered:
            out[key] = item
        elif item.parts and (owed := sorted(set(item.parts) - covered[key])):
            out[key] = replace(item, parts=owed)
    for item in failed:
        before = previous.get(item.key)
        parts = sorted(set(item.parts) | set(before.parts if before else []))
        out[item.key] = RetryItem(
            work=item.work,
            owner_id=item.owner_id,
            persona=item.persona,
            parts=parts,
            error=item.error,
            attempts=(before.attempts if before else 0) + 1,
            first_failed=before.first_failed if before else as_of,
            last_failed=as_of,
        )
    return dict(sorted(out.items()))
