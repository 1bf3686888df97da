"""The pure alarm rules: opening, offline, supply, priority order, follow-up, step planning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dosewatch.domain.alarms import (
    AlarmKind,
    Priority,
    console_order,
    most_urgent,
    needs_follow_up,
    priority_rank_sql,
)
from dosewatch.domain.escalation import (
    DEFAULT_POLICY,
    Channel,
    OnDuty,
    Policy,
    Position,
    Step,
    Target,
    plan_step,
    remind_at,
)
from dosewatch.domain.offline import OFFLINE_AFTER, is_offline
from dosewatch.domain.opening import Subject, new_ack_code, open_alarms, slot_alarm
from dosewatch.domain.slots import SlotState
from dosewatch.domain.supply import after_refill, predicted_empty_at

NOW = datetime(2026, 11, 23, 7, 45, tzinfo=UTC)
ROSTER = [OnDuty(1, "primary", "+46701", "sv"), OnDuty(2, "lead", "+46702", "en")]


@pytest.mark.parametrize(
    ("closed_as", "critical", "expected"),
    [
        (SlotState.MISSED, False, (AlarmKind.MISSED_DOSE, Priority.MEDIUM)),
        (SlotState.MISSED, True, (AlarmKind.MISSED_DOSE, Priority.HIGH)),
        (SlotState.UNKNOWN, False, (AlarmKind.DOSE_STATUS_UNKNOWN, Priority.MEDIUM)),
        (SlotState.UNKNOWN, True, (AlarmKind.DOSE_STATUS_UNKNOWN, Priority.HIGH)),
    ],
)
def test_a_slot_alarms_kind_and_priority(
    closed_as: SlotState, critical: bool, expected: tuple[AlarmKind, Priority]
) -> None:
    assert slot_alarm(closed_as, critical) == expected


@pytest.mark.parametrize("state", [SlotState.TAKEN, SlotState.PENDING, SlotState.SUSPENDED])
def test_a_slot_that_did_not_close_untaken_opens_no_alarm(state: SlotState) -> None:
    with pytest.raises(ValueError, match="opens no alarm"):
        slot_alarm(state, False)


def test_ack_codes_are_four_digits_from_the_injected_source() -> None:
    assert new_ack_code(lambda n: 7) == "0007"
    assert new_ack_code(lambda n: n - 1) == "9999"
    assert all(len(c) == 4 and c.isdigit() for c in (new_ack_code() for _ in range(200)))


def test_opening_decides_team_policy_and_first_step_once_per_team() -> None:
    own = Policy((Step(Target.LEAD, (Channel.SMS,), 5),))
    subjects = [
        Subject(AlarmKind.MISSED_DOSE, Priority.HIGH, f"D{i}", i, team)
        for i, team in enumerate((10, 10, 20, None))
    ]
    decided = open_alarms(
        subjects, {10: own, 20: None}, {10: ROSTER, 20: ROSTER}, {}, NOW, lambda n: 42
    )
    assert [d.policy for d in decided] == [own, own, DEFAULT_POLICY, DEFAULT_POLICY]
    assert decided[0].first is decided[1].first  # one plan for the team's alarms
    assert [n.nurse_id for n in decided[0].first.notices] == [2]  # the lead
    assert [(n.nurse_id, n.channel) for n in decided[2].first.notices] == [(1, Channel.SMS)]
    assert decided[3].first.notices == () and decided[3].first.history["reached_no_one"]
    assert {d.ack_code for d in decided} == {"0042"}
    assert decided[2].first.next.position == Position(1, 0)
    assert decided[2].first.next.at == NOW + timedelta(minutes=10)


def test_a_patient_reminder_first_step_is_planned_per_patient_and_needs_consent() -> None:
    policy = Policy(
        (
            Step(Target.PATIENT_CONTACT, (Channel.SMS,), 5),
            Step(Target.ON_DUTY, (Channel.SMS,), 5),
        )
    )
    subjects = [Subject(AlarmKind.MISSED_DOSE, Priority.MEDIUM, f"D{i}", i, 1) for i in (1, 2)]
    decided = open_alarms(subjects, {1: policy}, {1: ROSTER}, {1: "+4670999", 2: None}, NOW)
    assert [n.to_number for n in decided[0].first.notices] == ["+4670999"]
    assert decided[1].first.notices == ()


@pytest.mark.parametrize(
    ("online", "seen_ago", "offline"),
    [
        (False, timedelta(0), True),  # the Last Will said so
        (True, OFFLINE_AFTER + timedelta(seconds=1), True),  # silent too long
        (True, OFFLINE_AFTER, False),  # exactly at the limit: not yet
        (None, None, False),  # never heard from: unknown is not offline
        (True, None, False),
    ],
)
def test_offline(online: bool | None, seen_ago: timedelta | None, offline: bool) -> None:
    seen = None if seen_ago is None else NOW - seen_ago
    assert is_offline(online, seen, NOW) is offline


def test_predicted_empty_and_refill() -> None:
    upcoming = [NOW + timedelta(hours=h) for h in (1, 13, 25)]
    assert predicted_empty_at(None, upcoming, NOW) is None
    assert predicted_empty_at(0, upcoming, NOW) == NOW
    assert predicted_empty_at(-2, upcoming, NOW) == NOW
    assert predicted_empty_at(1, upcoming, NOW) == upcoming[1]
    assert predicted_empty_at(3, upcoming, NOW) is None  # enough for every planned dose
    assert after_refill(None, 14) == after_refill(-3, 14) == 14
    assert after_refill(2, 14) == 16


def test_priority_order_and_its_sql() -> None:
    assert [p.rank for p in (Priority.HIGH, Priority.MEDIUM, Priority.LOW)] == [0, 1, 2]
    assert most_urgent([Priority.LOW, Priority.HIGH, Priority.MEDIUM]) is Priority.HIGH
    sql = priority_rank_sql("a.priority")
    assert all(f"WHEN '{p.value}' THEN {p.rank}" in sql for p in Priority)
    keys = [
        console_order(True, False, Priority.HIGH, NOW, 1),
        console_order(False, True, Priority.HIGH, NOW, 2),
        console_order(False, False, Priority.LOW, NOW, 3),
        console_order(False, False, Priority.HIGH, NOW + timedelta(1), 4),
        console_order(False, False, Priority.HIGH, NOW, 5),
    ]
    assert [k[-1] for k in sorted(keys)] == [5, 4, 3, 2, 1]


@pytest.mark.parametrize(
    ("outcome", "note", "follow"),
    [
        ("patient_away", None, True),
        ("other", None, True),
        ("home_visit", "ring the neighbour", True),
        ("home_visit", "   ", False),
        ("reached_by_phone", None, False),
    ],
)
def test_handover_follow_up(outcome: str, note: str | None, follow: bool) -> None:
    assert needs_follow_up(outcome, note) is follow


def test_a_step_is_planned_from_the_roster_when_it_was_due() -> None:
    plan = plan_step(DEFAULT_POLICY, Position(2, 0), NOW, ROSTER)
    assert [(n.key, n.channel, n.language) for n in plan.notices] == [
        (":sms:n2", Channel.SMS, "en"),
        (":voice:n2", Channel.VOICE, "en"),
    ]
    assert plan.history["target"] == "lead" and plan.next.position == Position(3, 0)
    assert remind_at(DEFAULT_POLICY, NOW) == NOW + timedelta(minutes=30)
    assert remind_at(Policy(DEFAULT_POLICY.steps, remind_after_ack_min=None), NOW) is None
