"""Dose slot states and their transitions, as one pure function.

States:
``pending``     expected, window not yet closed;
``taken``       the dispenser reported the dose taken, received by the server inside the window;
``taken_late``  taken, but received after the window closed;
``missed``      the window closed with no dose taken, or the device withdrew the dose;
``unknown``     the dispenser was offline when the window closed; a late ``dose_taken`` makes
                it ``taken_late``, a late ``dose_not_taken`` makes it ``missed``;
``suspended``   inside an absence: no alarm, excluded from adherence.

The server clock decides: a dose counts as on time when the server *received* it before the
window ended. A device clock may be minutes off, so ``occurred_at`` is recorded, not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dosewatch.domain.protocol import EventType


class SlotState(StrEnum):
    PENDING = "pending"
    TAKEN = "taken"
    TAKEN_LATE = "taken_late"
    MISSED = "missed"
    UNKNOWN = "unknown"
    SUSPENDED = "suspended"


OPEN_STATES = frozenset({SlotState.PENDING})
CLOSED_UNTAKEN = frozenset({SlotState.MISSED, SlotState.UNKNOWN})
TAKEN_STATES = frozenset({SlotState.TAKEN, SlotState.TAKEN_LATE})


@dataclass(frozen=True)
class Transition:
    new_state: SlotState
    opens_alarm: bool = False
    clears_alarm: bool = False


def apply_event(
    state: SlotState, event: EventType, received_at: datetime, window_end: datetime
) -> Transition | None:
    """What a dose event does to a slot; ``None`` means "no change" (idempotent, order-free).

    Taken wins over missed, and on time wins over late. Whether a take was on time depends only
    on when the server received that ``dose_taken``, not on what arrived before it. So a
    ``dose_not_taken`` delivered ahead of an earlier ``dose_taken`` (out of order) ends in the
    same state as the in-order sequence, and duplicates change nothing.
    """
    if state in (SlotState.TAKEN, SlotState.SUSPENDED):
        return None
    if event is EventType.DOSE_TAKEN:
        on_time = received_at <= window_end
        if state is SlotState.TAKEN_LATE:  # an on-time report processed after a late one
            return Transition(SlotState.TAKEN) if on_time else None
        return Transition(
            SlotState.TAKEN if on_time else SlotState.TAKEN_LATE,
            clears_alarm=state in CLOSED_UNTAKEN,
        )
    if state is SlotState.TAKEN_LATE:
        return None
    if event is EventType.DOSE_NOT_TAKEN and state is SlotState.PENDING:
        return Transition(SlotState.MISSED, opens_alarm=True)
    if event is EventType.DOSE_NOT_TAKEN and state is SlotState.UNKNOWN:
        return _unknown_turned_out_missed()
    return None


def _unknown_turned_out_missed() -> Transition:
    """A replayed ``dose_not_taken`` for a slot closed ``unknown``: it was missed.

    The slot counts as what it turned out to be (adherence, reports and FHIR say missed, not
    unknown). The alarm: ``unknown`` opened a ``dose_status_unknown`` alarm when the window
    closed, with the priority a ``missed_dose`` alarm would have, so a nurse is already being
    called about this very dose. It must stand — the dose really was not taken, so unlike a
    replayed take nothing clears it — and nothing new opens: a second page for the same dose
    would only repeat the first (and one slot has one alarm). If the nurse has resolved it
    already, she followed the dose up when it mattered; the state now tells her what it was.
    """
    return Transition(SlotState.MISSED, opens_alarm=False, clears_alarm=False)


def close_window(
    state: SlotState, window_end: datetime, now: datetime, device_offline: bool = False
) -> Transition | None:
    """The sweep's rule: a pending slot whose window has closed becomes missed — or unknown if
    the dispenser was offline then — with an alarm either way (a nurse must find out)."""
    if state is SlotState.PENDING and window_end <= now:
        new_state = SlotState.UNKNOWN if device_offline else SlotState.MISSED
        return Transition(new_state, opens_alarm=True)
    return None
