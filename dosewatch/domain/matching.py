"""Which dose slot a dose event belongs to.

* An event that carries ``dose_due_at`` (current firmware) belongs to the slot due at exactly
  that instant, or to none.
* An event without it (older firmware) belongs to the *open* slot (not yet taken) whose due
  time is nearest to the event's ``occurred_at``, provided it is within
  :data:`MATCH_TOLERANCE` of it. Ties go to the earlier slot, because a dose is served at or
  after its due time, never long before. A second take near a slot already taken is therefore
  not counted twice: it matches the next open slot in reach, or none.

An event that matches nothing is still stored and reported by the caller; matching only decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

MATCH_TOLERANCE = timedelta(hours=3)


@dataclass(frozen=True)
class SlotRef:
    id: int
    due_at: datetime
    open: bool = True  # not yet taken (pending, missed or unknown)


def match_slot(
    candidates: Sequence[SlotRef], occurred_at: datetime, dose_due_at: datetime | None
) -> SlotRef | None:
    if dose_due_at is not None:
        return next((s for s in candidates if s.due_at == dose_due_at), None)
    best: SlotRef | None = None
    best_key: tuple[timedelta, datetime] | None = None
    for slot in candidates:
        if not slot.open:
            continue
        distance = abs(slot.due_at - occurred_at)
        if distance > MATCH_TOLERANCE:
            continue
        key = (distance, slot.due_at)
        if best_key is None or key < best_key:
            best, best_key = slot, key
    return best


def candidate_range(
    occurred_at: datetime, dose_due_at: datetime | None
) -> tuple[datetime, datetime]:
    """The due-time range a caller must load candidates from (inclusive bounds)."""
    if dose_due_at is not None:
        return dose_due_at, dose_due_at
    return occurred_at - MATCH_TOLERANCE, occurred_at + MATCH_TOLERANCE
