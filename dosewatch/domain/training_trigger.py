"""What a training trigger opens (pure): the real cause's alarm, on a training dispenser.

The kind and priority come from the real rules (:func:`dosewatch.domain.opening.slot_alarm`,
the device occurrences), and the alarm is then opened by
:func:`dosewatch.domain.opening.open_alarms` like every real one. The other training rules are
in :mod:`dosewatch.domain.training`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from dosewatch.domain.alarms import AlarmKind, Priority
from dosewatch.domain.device_alarms import OCCURRENCES
from dosewatch.domain.opening import Subject, slot_alarm
from dosewatch.domain.slots import SlotState


class TriggerKind(StrEnum):
    """What a trainer can set off on a training dispenser."""

    MISSED_DOSE = "missed_dose"
    STATUS_UNKNOWN = "status_unknown"
    HELP_BUTTON = "help_button"
    JAM = "jam"
    OFFLINE = "offline"


def trigger_alarm(kind: TriggerKind) -> tuple[AlarmKind, Priority]:
    """The alarm kind and priority a trigger opens: those of the real cause, by the real rules
    (:func:`~dosewatch.domain.opening.slot_alarm`, the device occurrences), not a copy."""
    if kind is TriggerKind.MISSED_DOSE:
        return slot_alarm(SlotState.MISSED, time_critical=False)
    if kind is TriggerKind.STATUS_UNKNOWN:
        return slot_alarm(SlotState.UNKNOWN, time_critical=False)
    if kind is TriggerKind.HELP_BUTTON:
        return OCCURRENCES["help_pressed"]
    if kind is TriggerKind.JAM:
        return OCCURRENCES["jam"]
    # Offline with a dose due soon, not time-critical: the device sweep's medium.
    return AlarmKind.DISPENSER_OFFLINE, Priority.MEDIUM


def trigger_refusal(team_training: bool | None) -> str | None:
    """Why a training alarm may not be triggered on this dispenser (``None``: it may).
    ``team_training`` is its patient's team's flag, ``None`` when the patient has no team."""
    if team_training:
        return None
    return "training alarms can be triggered only on a training team's dispenser"


def trigger_subject(
    kind: TriggerKind,
    dispenser_id: str,
    patient_id: int,
    team_id: int,
    now: datetime,
    by: str,
) -> Subject:
    """The subject of a triggered alarm. A dose kind has no real slot behind it (no dose record
    is invented): it names ``now`` as the dose time, so texts and the console show a time, and
    it is one open alarm per dispenser and kind, like a device alarm."""
    alarm_kind, priority = trigger_alarm(kind)
    return Subject(
        alarm_kind,
        priority,
        dispenser_id,
        patient_id,
        team_id,
        slot_id=None,
        slot_due_at=now if kind in (TriggerKind.MISSED_DOSE, TriggerKind.STATUS_UNKNOWN) else None,
        detail={"source": "training", "trigger": kind.value, "triggered_by": by},
    )
