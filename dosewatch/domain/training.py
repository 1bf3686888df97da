"""Training mode: the rules that keep a practice night apart from real care (pure).

A team can be a **training team**. That one flag is where "training" lives: a training team's
patients, dispensers and alarms are training ones because of their team, and everything else
derives it (an alarm from the team it pages, ``alarms.team_id``). Nothing copies it, so these
rules make sure the derived answer can never change for anything that already happened:

* the flag changes only while the team has no patients and no alarms
  (:func:`flag_change_refusal`);
* a patient with a record (an alarm, or a dose slot already decided) never crosses between a
  training team and a real one, or no team (:func:`move_refusal`).

**Never page a real number** (:func:`screen_step`, applied to every step a training alarm
executes, the first one included): a training alarm's SMS or call goes only to a nurse on the
training team's own roster (escalation only ever picks from the alarm's team), and never to a
number that is also the phone of a nurse of a real team, or the phone or contact number of a
real patient (one of a real team or of no team). Such a notice is withheld and the step's
history says so. The ``patient_contact`` step is skipped: a training patient is nobody's
relative to remind.

A training alarm is triggered on demand (:mod:`dosewatch.domain.training_trigger`) and opened
by the same rule as every real alarm (:func:`dosewatch.domain.opening.open_alarms`), so the
console, escalation and SMS behave exactly as on a real night, marked *training* wherever they
show.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import replace

from dosewatch.domain.escalation import Channel, StepPlan


def flag_change_refusal(training: bool, wanted: bool, patients: int, alarms: int) -> str | None:
    """Why a team's training flag may not change now (``None``: it may, or it is unchanged)."""
    if training == wanted:
        return None
    if patients or alarms:
        return (
            f"the team has {patients} patient(s) and {alarms} alarm(s): only an empty team can "
            "become, or stop being, a training team (its history would change meaning)"
        )
    return None


def move_refusal(from_training: bool, to_training: bool, has_record: bool) -> str | None:
    """Why a patient may not move between these teams (``None``: it may). No team is real."""
    if from_training == to_training or not has_record:
        return None
    if from_training:
        return "a training patient with a record can move only to another training team"
    return "a patient with a record cannot move into a training team"


def normalise_number(number: str) -> str:
    """A phone number as digits and a leading ``+``, so spacing cannot hide a match."""
    return re.sub(r"[^0-9+]", "", number)


def may_page(number: str | None, real_numbers: Collection[str]) -> bool:
    """Whether a training alarm may send to ``number``: not one of ``real_numbers``
    (normalised with :func:`normalise_number`)."""
    return number is not None and normalise_number(number) not in real_numbers


def screen_step(plan: StepPlan, real_numbers: Collection[str]) -> StepPlan:
    """A training alarm's step with everything withheld that could reach a real person: any
    notice that is not to a rostered nurse (the patient reminder), and any to a real number."""
    kept = tuple(
        n
        for n in plan.notices
        if n.nurse_id is not None and n.purpose != "patient_reminder"
        and may_page(n.to_number, real_numbers)
    )  # fmt: skip
    withheld = [
        {"nurse_id": n.nurse_id, "channel": n.channel.value}
        for n in plan.notices
        if n not in kept and n.channel is not Channel.CONSOLE
    ]
    notified = [x for x in plan.history["notified"] if "nurse_id" in x]
    history = {
        **plan.history,
        "notified": notified,
        "reached_no_one": not notified,
        "training": True,
        "withheld": withheld,
    }
    return replace(plan, notices=kept, history=history)
