"""Escalation policies as data, and the pure rule that walks an alarm through them.

A policy is an ordered list of steps. Each step says *whom* to notify (the nurse on duty, the
backup, the team lead, the whole team, or the patient's relative) and *how* (console, SMS,
voice call), then how long to wait for an acknowledgement before the next step. When the last
step's wait runs out the chain starts again from the first, up to ``repeats`` more times; after
that the alarm stays on the console and nobody else is paged.

An alarm references the immutable policy version that applied when it opened (the team's
current policy, or :data:`DEFAULT_POLICY`), so editing a team's policy never changes an
escalation already running. The alarm row holds the position (``step_index``, ``round``) and
``next_step_at``: the durable timer. :func:`advance` is the only rule for moving it, and it is a
function of data: the caller passes the time the step was *due*, not the time the sweep ran, so a
late sweep does not push every later step back (08:45 + 10 min is 08:55 even if the 08:45 step
ran at 08:46).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    CONSOLE = "console"
    SMS = "sms"
    VOICE = "voice"


class Target(StrEnum):
    ON_DUTY = "on_duty"  # the primary nurse on duty (the backup if no primary is on)
    BACKUP = "backup"
    LEAD = "lead"
    TEAM = "team"  # every nurse on duty in the team, whatever the role
    PATIENT_CONTACT = "patient_contact"  # the patient or a relative; only with recorded consent


@dataclass(frozen=True)
class Step:
    target: Target
    channels: tuple[Channel, ...]
    wait_min: int  # minutes to wait for an acknowledgement before the next step

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.value,
            "channels": [c.value for c in self.channels],
            "wait_min": self.wait_min,
        }


@dataclass(frozen=True)
class Policy:
    steps: tuple[Step, ...]
    repeats: int = 0  # how many more times the whole chain runs after the first
    remind_after_ack_min: int | None = 30  # acknowledged but unresolved: remind the nurse
    reopen_after_reminder: bool = False  # ... and then resume the escalation from the top

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [s.to_json() for s in self.steps],
            "repeats": self.repeats,
            "remind_after_ack_min": self.remind_after_ack_min,
            "reopen_after_reminder": self.reopen_after_reminder,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        return cls(
            steps=tuple(
                Step(Target(s["target"]), tuple(Channel(c) for c in s["channels"]), s["wait_min"])
                for s in data["steps"]
            ),
            repeats=data.get("repeats", 0),
            # Absent means the default; an explicit null means "never remind".
            remind_after_ack_min=data.get("remind_after_ack_min", 30),
            reopen_after_reminder=data.get("reopen_after_reminder", False),
        )


# Used for a team that has not set its own: SMS to the nurse on duty when the alarm opens, a
# call 10 minutes later, then the team lead, then everyone on duty; twice round, then console.
DEFAULT_POLICY = Policy(
    steps=(
        Step(Target.ON_DUTY, (Channel.CONSOLE, Channel.SMS), 10),
        Step(Target.ON_DUTY, (Channel.VOICE,), 10),
        Step(Target.LEAD, (Channel.SMS, Channel.VOICE), 10),
        Step(Target.TEAM, (Channel.SMS,), 15),
    ),
    repeats=1,
)


def policy_of(data: dict[str, Any] | None) -> Policy:
    """The policy an alarm references; none (a team without its own) means the default."""
    return DEFAULT_POLICY if data is None else Policy.from_json(data)


@dataclass(frozen=True)
class Position:
    step_index: int
    round: int = 0


@dataclass(frozen=True)
class Next:
    """What follows the step just executed: where the alarm stands and when to act again."""

    position: Position
    at: datetime | None  # None: the chain is exhausted; the alarm stays on the console


def advance(policy: Policy, done: Position, due_at: datetime) -> Next:
    """The position and due time after executing ``done``, which was due at ``due_at``."""
    step = policy.steps[done.step_index]
    at = due_at + timedelta(minutes=step.wait_min)
    if done.step_index + 1 < len(policy.steps):
        return Next(Position(done.step_index + 1, done.round), at)
    if done.round < policy.repeats:
        return Next(Position(0, done.round + 1), at)
    return Next(done, None)


def validate(policy: Policy) -> list[str]:
    """Everything wrong with a policy, as readable sentences (empty: it is fine)."""
    problems: list[str] = []
    if not policy.steps:
        problems.append("a policy needs at least one step")
    if not 0 <= policy.repeats <= 10:
        problems.append("repeats must be between 0 and 10")
    for i, step in enumerate(policy.steps, start=1):
        if not step.channels:
            problems.append(f"step {i} has no channel")
        if not 0 <= step.wait_min <= 240:
            problems.append(f"step {i}: wait_min must be between 0 and 240")
        if step.target is Target.PATIENT_CONTACT and i != 1:
            problems.append("only the first step may remind the patient or a relative")
        if step.target is Target.PATIENT_CONTACT and Channel.VOICE in step.channels:
            problems.append("the patient or relative is reminded by SMS only")
    if policy.steps and all(s.target is Target.PATIENT_CONTACT for s in policy.steps):
        problems.append("a policy must reach a nurse, not only the patient")
    if policy.remind_after_ack_min is not None and not 1 <= policy.remind_after_ack_min <= 720:
        problems.append("remind_after_ack_min must be between 1 and 720")
    return problems


def remind_at(policy: Policy, acknowledged_at: datetime) -> datetime | None:
    """When an acknowledged but unresolved alarm reminds the nurse who has it (never: None)."""
    if policy.remind_after_ack_min is None:
        return None
    return acknowledged_at + timedelta(minutes=policy.remind_after_ack_min)


def stops(acknowledged: bool, cleared: bool, resolved: bool) -> bool:
    """Whether an alarm's escalation is over: a nurse has it, or its cause went away.

    A cleared alarm (the late dose arrived) stops paging even though its acknowledgement is
    still owed: nobody should be woken for a dose that has been taken.
    """
    return acknowledged or cleared or resolved


def recipients_for(step: Step, on_duty: Sequence[tuple[int, str]]) -> list[int]:
    """Nurse ids for a step, given ``(nurse_id, role)`` of everyone on duty now.

    ``on_duty`` falls back to the backup when no primary is on; ``lead`` to the primary when
    no lead is on (someone must be told); ``team`` is everyone on duty.
    """
    by_role: dict[str, list[int]] = {}
    for nurse_id, role in on_duty:
        by_role.setdefault(role, []).append(nurse_id)
    if step.target is Target.ON_DUTY:
        return by_role.get("primary") or by_role.get("backup") or []
    if step.target is Target.BACKUP:
        return by_role.get("backup") or by_role.get("primary") or []
    if step.target is Target.LEAD:
        return by_role.get("lead") or by_role.get("backup") or by_role.get("primary") or []
    if step.target is Target.TEAM:
        return sorted({n for n, _ in on_duty})
    return []


@dataclass(frozen=True)
class OnDuty:
    """A nurse whose shift covers the moment a step is due."""

    nurse_id: int
    role: str
    phone: str
    language: str


@dataclass(frozen=True)
class Notice:
    """One outbox row a step decided. ``key`` is the part after the alarm's own prefix
    (:func:`outbox_key`), so the same step executed twice yields the same keys."""

    key: str
    purpose: str
    channel: Channel
    nurse_id: int | None
    to_number: str | None
    language: str


@dataclass(frozen=True)
class StepPlan:
    notices: tuple[Notice, ...]
    next: Next
    history: dict[str, Any]  # the detail of the step's 'escalated' history row


def outbox_key(alarm_id: int, epoch: int, done: Position, suffix: str) -> str:
    """The idempotency key of a step's notification: alarm, epoch, round, step, then who/how."""
    return f"a{alarm_id}:e{epoch}:r{done.round}:s{done.step_index}{suffix}"


def plan_step(
    policy: Policy,
    done: Position,
    due_at: datetime,
    on_duty: Sequence[OnDuty],
    patient_number: str | None = None,
) -> StepPlan:
    """Everything executing the step at ``done`` (due at ``due_at``) decides: who gets what on
    which channel, where the alarm goes next, and what its history says.

    ``on_duty`` is the roster when the step was *due* (not when a sweep got to it);
    ``patient_number`` is the consented contact number, for a ``patient_contact`` step. The
    console needs no outbox row: it shows every open alarm by itself, and the history records
    that the step included it.
    """
    step = policy.steps[done.step_index]
    notices: list[Notice]
    notified: list[dict[str, Any]]
    if step.target is Target.PATIENT_CONTACT:
        # No consent recorded: the step is skipped, and its history says so.
        notices = (
            []
            if patient_number is None
            else [Notice(":patient", "patient_reminder", Channel.SMS, None, patient_number, "sv")]
        )
        notified = [{"patient_contact": True}] if notices else []
    else:
        nurses = {n.nurse_id: n for n in on_duty}
        chosen = recipients_for(step, [(n.nurse_id, n.role) for n in on_duty])
        notices = [
            Notice(
                f":{channel.value}:n{nurse_id}",
                "alarm",
                channel,
                nurse_id,
                nurses[nurse_id].phone,
                nurses[nurse_id].language,
            )
            for nurse_id in chosen
            for channel in step.channels
            if channel is not Channel.CONSOLE
        ]
        notified = [{"nurse_id": n, "channels": [c.value for c in step.channels]} for n in chosen]
    nxt = advance(policy, done, due_at)
    history = {
        "step": done.step_index,
        "round": done.round,
        "target": step.target.value,
        "notified": notified,
        "reached_no_one": not notified,
        "next_step_at": nxt.at.isoformat() if nxt.at else None,
    }
    return StepPlan(tuple(notices), nxt, history)


def first_step_needs_patient_number(policy: Policy) -> bool:
    """Whether opening an alarm on ``policy`` needs the patient's consented contact number."""
    return policy.steps[0].target is Target.PATIENT_CONTACT
