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
    # Device alarms (see dosewatch.domain.device_alarms): at most one open per dispenser.
    DISPENSER_OFFLINE = "dispenser_offline"  # offline while a dose is due soon
    DEVICE_FAULT = "device_fault"  # jam or error
    POWER_LOST = "power_lost"
    BATTERY_LOW = "battery_low"
    TEMPERATURE = "temperature"  # outside 15–25 °C
    REFILL_NEEDED = "refill_needed"  # predicted empty within 48 h
    EMPTY = "empty"
    HELP_BUTTON = "help_button"
    SCHEDULE_NOT_APPLIED = "schedule_not_applied"


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
