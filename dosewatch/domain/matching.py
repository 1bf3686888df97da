"""Which dose slot a dose event belongs to.

* An event that carries ``dose_due_at`` (current firmware) belongs to the slot due at exactly
  that instant, or to none.
* An event without it (older firmware) belongs to the slot whose due time is nearest to the
  event's ``occurred_at``, provided it is within :data:`MATCH_TOLERANCE` of it. Ties go to the
  earlier slot, because a dose is served at or after its due time, never long before.

Matching looks only at the event and the planned due times, never at slot states. That is what
makes a day's final states independent of the order its events arrive in: each event always
lands on the same slot, and :func:`dosewatch.domain.slots.apply_event` is order-independent per
slot. (An earlier rule, "nearest slot not yet taken", avoided counting a second take twice but
made the slot an event lands on depend on which events came first.) A second take of a slot
already taken changes nothing, like a duplicate.

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


def match_slot(
    candidates: Sequence[SlotRef], occurred_at: datetime, dose_due_at: datetime | None
) -> SlotRef | None:
    if dose_due_at is not None:
        return next((s for s in candidates if s.due_at == dose_due_at), None)
    best: SlotRef | None = None
    best_key: tuple[timedelta, datetime] | None = None
    for slot in candidates:
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
