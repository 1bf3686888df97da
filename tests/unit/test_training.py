"""Training mode's rules (pure): what a trigger opens, who a training alarm may page, when the
flag may change and a patient may move, and how every text and export marks it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dosewatch import messages
from dosewatch.domain import scaip, training, webhooks
from dosewatch.domain.alarms import AlarmKind, Priority
from dosewatch.domain.disclosure import Detail, Patient
from dosewatch.domain.escalation import (
    DEFAULT_POLICY,
    Channel,
    OnDuty,
    Policy,
    Position,
    Step,
    Target,
    plan_step,
)
from dosewatch.domain.opening import Subject, open_alarms
from dosewatch.domain.training_trigger import (
    TriggerKind,
    trigger_alarm,
    trigger_refusal,
    trigger_subject,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
TZ = ZoneInfo("Europe/Stockholm")
ANNA = OnDuty(1, "primary", "+46 70 111 11 11", "sv")
LARS = OnDuty(2, "lead", "+46702222222", "en")


# --- what a trigger opens -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "alarm"),
    [
        (TriggerKind.MISSED_DOSE, (AlarmKind.MISSED_DOSE, Priority.MEDIUM)),
        (TriggerKind.STATUS_UNKNOWN, (AlarmKind.DOSE_STATUS_UNKNOWN, Priority.MEDIUM)),
        (TriggerKind.HELP_BUTTON, (AlarmKind.HELP_BUTTON, Priority.HIGH)),
        (TriggerKind.JAM, (AlarmKind.DEVICE_FAULT, Priority.HIGH)),
        (TriggerKind.OFFLINE, (AlarmKind.DISPENSER_OFFLINE, Priority.MEDIUM)),
    ],
)
def test_a_trigger_opens_the_real_causes_alarm(
    kind: TriggerKind, alarm: tuple[AlarmKind, Priority]
) -> None:
    assert trigger_alarm(kind) == alarm
    s = trigger_subject(kind, "TRN-1-1", 7, 3, NOW, "trainer")
    assert (s.kind, s.priority, s.team_id, s.slot_id) == (*alarm, 3, None)
    assert s.detail == {"source": "training", "trigger": kind.value, "triggered_by": "trainer"}
    # A dose kind names a dose time (the texts show one); a device kind none. No slot either way.
    dose = kind in (TriggerKind.MISSED_DOSE, TriggerKind.STATUS_UNKNOWN)
    assert s.slot_due_at == (NOW if dose else None)


def test_only_a_training_teams_dispenser_can_be_triggered() -> None:
    assert trigger_refusal(True) is None
    assert trigger_refusal(False) is not None
    assert trigger_refusal(None) is not None  # a patient with no team is a real patient


# --- the flag and moves ---------------------------------------------------------------------


def test_the_flag_changes_only_on_an_empty_team() -> None:
    assert training.flag_change_refusal(False, True, 0, 0) is None
    assert training.flag_change_refusal(True, False, 0, 0) is None
    assert training.flag_change_refusal(True, True, 5, 9) is None  # unchanged: nothing to refuse
    assert "1 patient(s)" in (training.flag_change_refusal(False, True, 1, 0) or "")
    assert training.flag_change_refusal(True, False, 0, 1) is not None


def test_a_patient_with_a_record_never_crosses_between_training_and_care() -> None:
    assert training.move_refusal(False, False, True) is None
    assert training.move_refusal(True, True, True) is None
    assert training.move_refusal(False, True, False) is None  # new, nothing recorded yet
    assert training.move_refusal(True, False, False) is None
    assert training.move_refusal(False, True, True) is not None
    assert training.move_refusal(True, False, True) is not None


# --- never page a real number ---------------------------------------------------------------


def test_numbers_compare_without_spacing() -> None:
    assert training.normalise_number("+46 70-111 11 11") == "+46701111111"
    assert training.may_page("+46 70 999 99 99", {"+46701111111"})
    assert not training.may_page("+46 70 111 11 11", {"+46701111111"})
    assert not training.may_page(None, set())


def test_a_training_step_withholds_a_real_number_and_keeps_the_rest() -> None:
    plan = plan_step(DEFAULT_POLICY, Position(3, 0), NOW, [ANNA, LARS])  # TEAM: both, by SMS
    assert {n.nurse_id for n in plan.notices} == {1, 2}
    screened = training.screen_step(plan, {"+46701111111"})  # Anna's number is also a real one
    assert [(n.nurse_id, n.to_number) for n in screened.notices] == [(2, "+46702222222")]
    assert screened.history["withheld"] == [{"nurse_id": 1, "channel": "sms"}]
    assert screened.history["training"] is True
    assert screened.next == plan.next  # the escalation goes on as planned
    assert training.screen_step(plan, set()).notices == plan.notices


def test_a_training_alarm_never_reminds_the_patient_or_a_relative() -> None:
    policy = Policy(
        (
            Step(Target.PATIENT_CONTACT, (Channel.SMS,), 5),
            Step(Target.ON_DUTY, (Channel.SMS,), 10),
        )
    )
    plan = plan_step(policy, Position(0, 0), NOW, [ANNA], "+46705555555")
    assert [n.purpose for n in plan.notices] == ["patient_reminder"]
    screened = training.screen_step(plan, set())
    assert screened.notices == () and screened.history["reached_no_one"] is True


def test_opening_screens_only_the_training_teams_first_step() -> None:
    subjects = [
        Subject(AlarmKind.HELP_BUTTON, Priority.HIGH, "TRN-1", 1, team_id=10),
        Subject(AlarmKind.MISSED_DOSE, Priority.MEDIUM, "DSP-1", 2, team_id=20),
    ]
    shared = OnDuty(5, "primary", "+46701111111", "sv")  # the same phone in both rosters
    opened = open_alarms(
        subjects, {}, {10: [shared], 20: [shared]}, {}, NOW, lambda _: 42,
        training_teams={10}, real_numbers={"+46701111111"},
    )  # fmt: skip
    training_alarm, real_alarm = opened
    assert training_alarm.first.notices == () and training_alarm.first.history["training"]
    assert [n.to_number for n in real_alarm.first.notices] == ["+46701111111"]
    assert "training" not in real_alarm.first.history


# --- marked everywhere ----------------------------------------------------------------------


def _facts(training_alarm: bool, alarm_id: int = 5) -> messages.AlarmFacts:
    return messages.AlarmFacts(
        alarm_id=alarm_id, kind="missed_dose", state="open", slot_due_at=NOW, opened_at=NOW,
        cleared_at=None, outcome=None, resolved_by=None, ack_code="1234",
        patient=Patient(17, "Astrid Berg", "Storgatan 1", "Haga"), detail=Detail.MINIMAL,
        training=training_alarm,
    )  # fmt: skip


def test_every_text_of_a_training_alarm_starts_with_the_word() -> None:
    url = "https://dw.example.se"
    f = _facts(True)
    assert messages.alarm_sms([f], "sv", TZ, url).startswith("TRÄNING: dosewatch: Missad dos 03:00")
    assert messages.alarm_sms([f], "en", TZ, url).startswith("TRAINING: dosewatch: Missed dose")
    assert messages.alarm_sms([f, _facts(True, 6)], "sv", TZ, url).startswith("TRÄNING: ")
    assert messages.reminder_sms(f, "sv", url).startswith("TRÄNING: ")
    assert messages.all_clear_sms(f, "en", TZ, url).startswith("TRAINING: ")
    assert messages.voice_prompt("sv", True) == "TRÄNING: dosewatch-larm. Tryck på valfri knapp."
    assert messages.voice_details(f, "en", TZ).startswith("TRAINING: ")
    assert messages.sms_acknowledged(f, "sv").startswith("TRÄNING: ")
    real = _facts(False)
    assert messages.alarm_sms([real], "sv", TZ, url).startswith("dosewatch: ")
    assert messages.voice_prompt("sv") == "dosewatch-larm. Tryck på valfri knapp."
    # A bundle that mixed the two would still say which line is practice.
    mixed = messages.alarm_sms([real, f], "sv", TZ, url).splitlines()
    assert mixed[0].startswith("TRÄNING: ") and mixed[1].startswith("- ")
    assert mixed[2].startswith("TRÄNING: - ")


def test_a_training_alarm_never_goes_to_an_alarm_receiving_centre() -> None:
    kinds = frozenset({"missed_dose"})
    assert scaip.forwardable("missed_dose", kinds)
    assert not scaip.forwardable("missed_dose", kinds, training=True)


def test_a_webhook_says_training() -> None:
    event = webhooks.AlarmEvent(
        history_id=1, action="opened", at=NOW, actor="system", via="training", alarm_id=5,
        kind="help_button", priority="high", state="open", dispenser_id="TRN-1-1",
        patient_id=7, teams=frozenset({3}), team_id=3, slot_due_at=None, opened_at=NOW,
        training=True,
    )  # fmt: skip
    assert webhooks.payload(event)["alarm"]["training"] is True


def test_the_training_texts_exist_in_both_languages() -> None:
    web = Path(__file__).resolve().parents[2] / "dashboards" / "web"
    sv = json.loads((web / "i18n" / "sv.training.json").read_text("utf-8"))
    en = json.loads((web / "i18n" / "en.training.json").read_text("utf-8"))
    assert sv.keys() == en.keys()
    fields = re.compile(r"\{(\w+)\}")
    assert {k: fields.findall(v) for k, v in sv.items()} == {
        k: fields.findall(v) for k, v in en.items()
    }
    used: set[str] = set()
    for name in ("admin_training.js", "console.js", "handover.js", "admin.js"):
        used |= set(re.findall(r"\bt\(\"(training_\w+)\"[,)]", (web / "static" / name).read_text()))
    used |= {f"training_kind_{k.value}" for k in TriggerKind}
    used |= {"training_make_q", "training_unmake_q", "training_make", "training_unmake"}
    assert used <= sv.keys(), used - sv.keys()
