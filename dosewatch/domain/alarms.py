"""Alarm facts and the state derived from them.

An alarm records separate facts — opened, acknowledged (a nurse has it), cleared (the cause went
away, e.g. a late dose arrived), resolved (a nurse closed it with an outcome). Clearing is not
acknowledging: a cleared alarm still shows that no nurse has taken it yet. The single ``state``
is derived from the facts (the database computes it the same way in a generated column).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class AlarmKind(StrEnum):
    MISSED_DOSE = "missed_dose"
    # The dispenser was offline when the window closed: the dose may have been taken. It clears
    # itself when the buffered dose_taken arrives.
    DOSE_STATUS_UNKNOWN = "dose_status_unknown"


class AlarmState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"
    RESOLVED = "resolved"


class Outcome(StrEnum):
    REACHED_BY_PHONE = "reached_by_phone"
    HOME_VISIT = "home_visit"
    DOSE_TAKEN_LATE = "dose_taken_late"
    PATIENT_AWAY = "patient_away"
    FALSE_ALARM = "false_alarm"
    OTHER = "other"


def derive_state(
    acknowledged_at: datetime | None, cleared_at: datetime | None, resolved_at: datetime | None
) -> AlarmState:
    if resolved_at is not None:
        return AlarmState.RESOLVED
    if cleared_at is not None:
        return AlarmState.CLEARED
    if acknowledged_at is not None:
        return AlarmState.ACKNOWLEDGED
    return AlarmState.OPEN


# The same rule in SQL, for the generated column; tests check that the two agree.
STATE_SQL = (
    "CASE WHEN resolved_at IS NOT NULL THEN 'resolved' "
    "WHEN cleared_at IS NOT NULL THEN 'cleared' "
    "WHEN acknowledged_at IS NOT NULL THEN 'acknowledged' ELSE 'open' END"
)
