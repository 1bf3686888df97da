"""Alarm facts and the state derived from them.

An alarm records separate facts — opened, acknowledged (a nurse has it), cleared (the cause went
away, e.g. a late dose arrived), resolved (a nurse closed it with an outcome). Clearing is not
acknowledging: a cleared alarm still shows that no nurse has taken it yet. The single ``state``
is derived from the facts (the database computes it the same way in a generated column).
"""

from __future__ import annotations

from collections.abc import Iterable
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


# Kinds that belong to one dose slot (at most one alarm per slot); every other kind belongs to a
# dispenser (at most one unresolved per dispenser and kind).
SLOT_KINDS = frozenset({AlarmKind.MISSED_DOSE, AlarmKind.DOSE_STATUS_UNKNOWN})


class Priority(StrEnum):
    """Declared most urgent first: the declaration order *is* the priority order."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for the most urgent; what every ordering by priority sorts on."""
        return _RANK[self]


_RANK = {p: i for i, p in enumerate(Priority)}


def priority_rank_sql(column: str) -> str:
    """:attr:`Priority.rank` as a SQL expression over ``column``, generated from the enum so the
    database orders exactly as the domain does (tests hold the two together)."""
    whens = " ".join(f"WHEN '{p.value}' THEN {p.rank}" for p in Priority)
    return f"(CASE {column} {whens} ELSE {len(Priority)} END)"


def most_urgent(priorities: Iterable[Priority]) -> Priority:
    return min(priorities, key=lambda p: p.rank)


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


# Outcomes after which the next shift must look again (the patient was away, or "other").
FOLLOW_UP_OUTCOMES = frozenset({Outcome.PATIENT_AWAY, Outcome.OTHER})


def needs_follow_up(outcome: str | None, note: str | None) -> bool:
    """The handover's rule: a resolved alarm the next shift must follow up — resolved as
    patient away or other, or with a note left for them."""
    return outcome in FOLLOW_UP_OUTCOMES or bool((note or "").strip())


def console_order(
    acknowledged: bool, cleared: bool, priority: Priority, opened_at: datetime, alarm_id: int
) -> tuple[bool, bool, int, datetime, int]:
    """The console's sort key: unacknowledged first (open, then cleared but still owed), then
    acknowledged; most urgent first within that; then the alarm waiting longest first."""
    return (acknowledged, cleared, priority.rank, opened_at, alarm_id)


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
