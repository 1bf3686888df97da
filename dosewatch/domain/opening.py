"""Opening an alarm: the one rule for what a new alarm is and what happens at once.

Every path that opens an alarm — the missed-dose sweep, a device's ``dose_not_taken``, the
device-alarm sweep — builds a :class:`Subject` and asks :func:`open_alarms`, which decides:

* **kind and priority**: for a slot, ``missed_dose`` or ``dose_status_unknown`` by how the slot
  closed (:func:`slot_alarm`), high when the dose is time-critical, else medium; device kinds
  come with their priority from :mod:`dosewatch.domain.device_alarms`;
* **ack code**: four random digits the nurse replies with (``OK 0427``);
* **team**: the patient's team when the alarm opens (it keeps paging that team even if the
  patient moves);
* **policy version**: the team's current escalation policy, or :data:`DEFAULT_POLICY` for a team
  without one — referenced, immutable, so a later edit never changes a running escalation;
* **first step**: executed as the alarm opens (:func:`dosewatch.domain.escalation.plan_step` at
  the opening instant), so its notifications are written in the same transaction as the alarm
  and the alarm row starts at its second step;
* **training**: an alarm of a training team (``training_teams``) has its first step screened by
  :func:`dosewatch.domain.training.screen_step`, like every later step, so it pages no real
  number.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dosewatch.domain.alarms import AlarmKind, Priority
from dosewatch.domain.escalation import (
    DEFAULT_POLICY,
    OnDuty,
    Policy,
    Position,
    StepPlan,
    first_step_needs_patient_number,
    plan_step,
)
from dosewatch.domain.slots import SlotState
from dosewatch.domain.training import screen_step

_SLOT_KIND = {
    SlotState.MISSED: AlarmKind.MISSED_DOSE,
    # Offline when the window closed: the dose may have been taken and be waiting in the buffer.
    SlotState.UNKNOWN: AlarmKind.DOSE_STATUS_UNKNOWN,
}


def slot_alarm(closed_as: SlotState, time_critical: bool) -> tuple[AlarmKind, Priority]:
    """Kind and priority of the alarm for a slot that closed untaken as ``closed_as``."""
    try:
        kind = _SLOT_KIND[closed_as]
    except KeyError:
        raise ValueError(f"a slot closed as {closed_as.value!r} opens no alarm") from None
    return kind, Priority.HIGH if time_critical else Priority.MEDIUM


def new_ack_code(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """The SMS reply code: four digits, unpredictable (a guessed code must not silence an
    alarm; the webhook also checks the sender is a nurse who was paged)."""
    return f"{randbelow(10_000):04d}"


def applicable_policy(team_policy: Policy | None) -> Policy:
    """The policy a new alarm follows: its team's current one, else the default."""
    return DEFAULT_POLICY if team_policy is None else team_policy


@dataclass(frozen=True)
class Subject:
    """What is known of an alarm about to open (from the slot or the dispenser)."""

    kind: AlarmKind
    priority: Priority
    dispenser_id: str
    patient_id: int
    team_id: int | None  # the patient's team now
    slot_id: int | None = None
    slot_due_at: datetime | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # for the 'opened' history row


@dataclass(frozen=True)
class Opening:
    """The decided alarm: everything to write, in one transaction."""

    subject: Subject
    ack_code: str
    policy: Policy
    first: StepPlan  # the first step, executed at the opening instant
    at: datetime


def open_alarms(
    subjects: Sequence[Subject],
    policies: Mapping[int | None, Policy | None],
    rosters: Mapping[int | None, Sequence[OnDuty]],
    patient_numbers: Mapping[int, str | None],
    now: datetime,
    randbelow: Callable[[int], int] = secrets.randbelow,
    training_teams: Collection[int] = frozenset(),
    real_numbers: Collection[str] = frozenset(),
) -> list[Opening]:
    """Decide each alarm. ``policies``: each team's current policy (``None``: it has none);
    ``rosters``: who of each team is on duty ``now``; ``patient_numbers``: consented contact
    numbers, needed only when a first step reminds the patient; ``training_teams``: the teams
    among them that are training teams, and ``real_numbers`` the numbers their rosters share
    with real nurses and patients (normalised), which a training alarm never pages.

    The first step is planned once per team (and patient, for a patient step): at the 08:00
    rush a thousand alarms of one team share one plan instead of a thousand identical ones.
    """
    plans: dict[tuple[int | None, int | None], StepPlan] = {}
    out = []
    for s in subjects:
        policy = applicable_policy(policies.get(s.team_id))
        per_patient = first_step_needs_patient_number(policy)
        key = (s.team_id, s.patient_id if per_patient else None)
        if key not in plans:
            plans[key] = plan_step(
                policy,
                Position(0, 0),
                now,
                rosters.get(s.team_id, ()),
                patient_numbers.get(s.patient_id) if per_patient else None,
            )
            if s.team_id in training_teams:
                plans[key] = screen_step(plans[key], real_numbers)
        out.append(Opening(s, new_ack_code(randbelow), policy, plans[key], now))
    return out
