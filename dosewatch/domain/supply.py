"""Doses in the dispenser: when it runs empty, and what a refill leaves.

The dispenser is empty at the due time of the first planned dose beyond the doses left: with 3
left, the 4th upcoming pending slot is the first that cannot be served. With none left it is
empty now. The pharmacists' worklist and the ``refill_needed`` / ``empty`` device alarms both
use :func:`predicted_empty_at`; the SQL that evaluates it for every dispenser at once
(``dosewatch.db.supply``) is held to it by a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


def predicted_empty_at(
    doses_left: int | None, upcoming_due: Sequence[datetime], now: datetime
) -> datetime | None:
    """``upcoming_due``: due times of the pending slots due after ``now``, earliest first.
    ``None``: supply unknown, or enough for every planned dose."""
    if doses_left is None:
        return None
    if doses_left <= 0:
        return now
    return upcoming_due[doses_left] if doses_left < len(upcoming_due) else None


def after_refill(doses_left: int | None, doses_loaded: int) -> int:
    """Doses left after loading ``doses_loaded``. An unknown or negative count (a device that
    over-counted) starts from zero: what was loaded is what is certainly there."""
    return max(0, doses_left or 0) + doses_loaded
