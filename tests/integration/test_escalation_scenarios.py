"""Escalation scenarios on an injected clock: exactly which notifications go out, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from alarms.notifier import RecordingNotifier
from dashboards.app import create_app
from dosewatch.clock import FakeClock
from dosewatch.db import alarms as alarm_sql
from dosewatch.domain.retry import Failure
from dosewatch.usecases import alarm_actions
from tests.auth_helpers import as_admin
from tests.helpers import add_dispenser, alarms_of
from tests.scenario import (
    STOCKHOLM,
    Scenario,
    add_team,
    nurse_and_lead_with_a_patient,
    put_patient_in_team,
)

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm, window 45 min
PRIMARY, LEAD, BACKUP = "+46701111111", "+46702222222", "+46703333333"
NAMES = {PRIMARY: "primary", LEAD: "lead", BACKUP: "backup"}
DAY_SHIFT = (datetime(2026, 11, 23, 6, 0, tzinfo=UTC), datetime(2026, 11, 23, 15, 0, tzinfo=UTC))


def local(hh_mm: str) -> datetime:
    h, m = map(int, hh_mm.split(":"))
    return datetime(2026, 11, 23, h - 1, m, tzinfo=UTC)  # Stockholm is UTC+1 in November


@pytest.fixture
def scenario(pool: ConnectionPool, clock: FakeClock) -> Scenario:
    nurse_and_lead_with_a_patient(pool, clock.now(), (PRIMARY, LEAD), DAY_SHIFT)
    return Scenario(pool, clock, RecordingNotifier())


def test_sms_then_call_then_lead_then_late_dose_stops_everything_with_an_all_clear(
    scenario: Scenario, pool: ConnectionPool
) -> None:
    """The issue's scenario: 08:00 dose, 45 min window, nothing taken."""
    scenario.at(local("09:07"), lambda: scenario.dose_taken("DSP-1", DUE))
    scenario.run_until(local("10:30"))

    assert sorted(scenario.summary(NAMES)) == [
        ("08:45", "sms", "primary"),
        ("08:55", "voice", "primary"),
        ("09:05", "sms", "lead"),
        ("09:05", "voice", "lead"),
        ("09:07", "sms", "lead"),  # all-clear
        ("09:07", "sms", "primary"),  # all-clear
    ]
    first = scenario.sent[0].body
    assert "Missad dos 08:00" in first and "Svara OK" in first
    assert all("Klart" in s.body for s in scenario.sent[-2:])
    [alarm] = alarms_of(pool, "DSP-1")
    assert alarm["state"] == "cleared"  # the late dose cleared it ...
    assert alarm["acknowledged_at"] is None  # ... but a nurse still owes the acknowledgement
    assert alarm["next_step_at"] is None
    # The console's escalation timeline, through the API.
    with as_admin(TestClient(create_app(pool, scenario.clock)), pool) as api:
        detail = api.get(f"/api/v1/alarms/{alarm['id']}").json()
    timeline = [
        (n["purpose"], n["channel"], n["nurse_name"], n["status"]) for n in detail["notifications"]
    ]
    assert timeline == [
        ("alarm", "sms", "Anna", "sent"),
        ("alarm", "voice", "Anna", "sent"),
        ("alarm", "sms", "Lars", "sent"),
        ("alarm", "voice", "Lars", "sent"),
        ("all_clear", "sms", "Anna", "sent"),
        ("all_clear", "sms", "Lars", "sent"),
    ]
    assert [h["action"] for h in detail["history"]] == [
        "opened",
        "escalated",
        "escalated",
        "escalated",
        "cleared",
    ]


def test_acknowledging_stops_the_escalation_at_once(
    scenario: Scenario, pool: ConnectionPool
) -> None:
    def ack() -> None:
        [alarm] = alarms_of(pool, "DSP-1")
        with pool.connection() as conn:
            alarm_actions.acknowledge(conn, alarm["id"], scenario.clock.now(), "Anna", "console")

    scenario.at(local("08:50"), ack)
    scenario.run_until(local("09:30"))
    assert scenario.summary(NAMES) == [("08:45", "sms", "primary")]


def test_a_permanently_failing_number_moves_to_the_next_step_at_once(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    nurse_and_lead_with_a_patient(pool, clock.now(), (PRIMARY, LEAD), DAY_SHIFT)
    invalid = Failure(400, 21211, "The 'To' number is not a valid phone number.")
    notifier = RecordingNotifier(fail=lambda out: invalid if out.to == PRIMARY else None)
    scenario = Scenario(pool, clock, notifier)
    scenario.run_until(local("09:00"))
    # 08:45: the SMS to the primary fails for good → the call step (same bad number) runs at
    # once, fails too → the lead is paged at 08:45, not at 09:05.
    assert sorted(scenario.summary(NAMES))[:2] == [
        ("08:45", "sms", "lead"),
        ("08:45", "voice", "lead"),
    ]


def test_a_transient_failure_is_retried_with_backoff_and_sent_once(
    pool: ConnectionPool, clock: FakeClock, scenario: Scenario
) -> None:
    failures = iter([Failure(500, None, "boom"), Failure(429, 20429, "slow down")])

    def flaky(_out: object) -> Failure | None:
        return next(failures, None)

    scenario.notifier = RecordingNotifier(fail=flaky)  # type: ignore[misc]
    scenario.__post_init__()
    scenario.run_until(local("08:50"), step=timedelta(seconds=10))
    sms = [s for s in scenario.sent if s.channel == "sms"]
    assert len(sms) == 1 and sms[0].to == PRIMARY
    # 08:45:00 fails, retry after 10 s fails, retry after 20 s succeeds.
    assert sms[0].at == local("08:45") + timedelta(seconds=30)


def two_patients(pool: ConnectionPool, clock: FakeClock, **team: object) -> tuple[int, dict]:
    team_id, nurses = add_team(
        pool,
        clock.now(),
        "Umeå Syd",
        [("Anna", PRIMARY, "sv", "primary"), ("Lars", LEAD, "en", "lead")],
        DAY_SHIFT,
        **team,  # type: ignore[arg-type]
    )
    for dispenser in ("DSP-1", "DSP-2"):
        put_patient_in_team(pool, add_dispenser(pool, dispenser, clock.now()), team_id)
    return team_id, nurses


def test_alarms_for_the_same_nurse_at_the_same_time_are_bundled_into_one_sms(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    two_patients(pool, clock)
    scenario = Scenario(pool, clock, RecordingNotifier())
    scenario.run_until(local("08:46"))
    [sms] = scenario.sent
    assert sms.at == local("08:45") and sms.to == PRIMARY
    assert "2 larm" in sms.body
    alarms = [a for d in ("DSP-1", "DSP-2") for a in alarms_of(pool, d)]
    # Each line names its patient by initials and reference (the default), with its own code
    # and its own console link.
    assert "Patient of" not in sms.body
    for a in alarms:
        assert f"P.D. #{a['patient_id']} (OK {a['ack_code']})" in sms.body
        assert f"/console?alarm={a['id']}" in sms.body


def test_an_unresolved_acknowledgement_gets_a_reminder_and_can_reopen(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    policy = {
        "steps": [
            {"target": "on_duty", "channels": ["sms"], "wait_min": 10},
            {"target": "lead", "channels": ["sms"], "wait_min": 10},
        ],
        "repeats": 0,
        "remind_after_ack_min": 20,
        "reopen_after_reminder": True,
    }
    _, nurses = two_patients(pool, clock, policy=policy)
    scenario = Scenario(pool, clock, RecordingNotifier())

    def ack() -> None:
        for d in ("DSP-1", "DSP-2"):
            [alarm] = alarms_of(pool, d)
            with pool.connection() as conn:
                alarm_actions.acknowledge(
                    conn, alarm["id"], clock.now(), "Anna", "sms", nurse_id=nurses["Anna"]
                )

    scenario.at(local("08:50"), ack)
    scenario.run_until(local("09:20"))
    assert sorted(scenario.summary(NAMES)) == [
        ("08:45", "sms", "primary"),  # the bundle
        ("09:10", "sms", "primary"),  # reminder, DSP-1
        ("09:10", "sms", "primary"),  # reminder, DSP-2
        ("09:10", "sms", "primary"),  # reopened: step 1 again, bundled
        ("09:20", "sms", "lead"),  # nobody acknowledged again: the lead
    ]
    assert any("Påminnelse" in s.body for s in scenario.sent)
    assert alarms_of(pool, "DSP-1")[0]["state"] == "open"


def test_the_policy_is_copied_when_the_alarm_opens(pool: ConnectionPool, clock: FakeClock) -> None:
    team_id, _ = two_patients(pool, clock)
    scenario = Scenario(pool, clock, RecordingNotifier())
    scenario.run_until(local("08:46"))
    # The team's policy changes mid-escalation: SMS only to the lead from now on.
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO escalation_policies VALUES (%s, 1, %s, %s, 'admin')",
            (
                team_id,
                '{"steps": [{"target": "lead", "channels": ["sms"], "wait_min": 5}]}',
                clock.now(),
            ),
        )
    scenario.run_until(local("09:06"))
    # The running escalations keep the default: the 08:55 calls to the primary still happen.
    assert ("08:55", "voice", "primary") in scenario.summary(NAMES)


def test_the_patient_is_reminded_first_only_with_consent(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    policy = {
        "steps": [
            {"target": "patient_contact", "channels": ["sms"], "wait_min": 10},
            {"target": "on_duty", "channels": ["sms"], "wait_min": 10},
        ]
    }
    two_patients(pool, clock, policy=policy)
    with pool.connection() as conn:
        conn.execute(
            "UPDATE patients SET contact_phone = '+46709999999', contact_sms_consent_at = %s"
            " WHERE name = 'Patient of DSP-1'",
            (clock.now(),),
        )
        conn.execute(
            "UPDATE patients SET contact_phone = '+46708888888' WHERE name = 'Patient of DSP-2'"
        )
    scenario = Scenario(pool, clock, RecordingNotifier())
    scenario.run_until(local("08:56"))
    assert sorted(scenario.summary(NAMES)) == [
        ("08:45", "sms", "+46709999999"),  # consent recorded: reminded
        ("08:55", "sms", "primary"),  # both alarms, bundled
    ]


def test_nobody_on_duty_is_recorded_and_the_console_still_has_it(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-1", clock.now())  # the patient has no team
    scenario = Scenario(pool, clock, RecordingNotifier())
    scenario.run_until(local("08:46"))
    assert scenario.sent == []
    [alarm] = alarms_of(pool, "DSP-1")
    with pool.connection() as conn:
        history = alarm_sql.history(conn, alarm["id"])
        channels = conn.execute(
            "SELECT channel, status FROM notifications WHERE alarm_id = %s", (alarm["id"],)
        ).fetchall()
    assert [h["detail"].get("reached_no_one") for h in history if h["action"] == "escalated"] == [
        True
    ]
    assert channels == []  # nothing to send; the console lists every open alarm anyway


def test_console_only_mode_pages_nobody_and_says_so(pool: ConnectionPool, clock: FakeClock) -> None:
    two_patients(pool, clock)
    scenario = Scenario(pool, clock, RecordingNotifier())
    scenario.dispatcher._notifier = None  # what start-up does without Twilio credentials
    scenario.run_until(local("08:46"))
    assert scenario.sent == []
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT channel, status, last_error FROM notifications ORDER BY id"
        ).fetchall()
    assert {(r["channel"], r["status"]) for r in rows} == {("sms", "skipped")}
    assert all("console-only" in r["last_error"] for r in rows if r["channel"] == "sms")


def test_alarms_arriving_soon_after_an_sms_wait_and_go_out_together(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    """08:45 the first alarm's SMS goes at once; 08:46 and 08:47 alarms for the same nurse wait
    for the 2-minute bundle window after it and go out as one SMS at 08:47."""
    team_id, _ = add_team(pool, clock.now(), "T", [("Anna", PRIMARY, "sv", "primary")], DAY_SHIFT)
    for dispenser, window in (("DSP-A", 45), ("DSP-B", 46), ("DSP-C", 47)):
        patient = add_dispenser(
            pool, dispenser, clock.now(), doses=[{"time": "08:00", "window_min": window}]
        )
        put_patient_in_team(pool, patient, team_id)
    scenario = Scenario(pool, clock, RecordingNotifier())
    scenario.dispatcher._bundle_window = timedelta(minutes=2)
    scenario.run_until(local("08:50"))
    sms = [s for s in scenario.sent if s.channel == "sms"]
    assert [(s.at.astimezone(STOCKHOLM).strftime("%H:%M"), s.body.count("OK ")) for s in sms] == [
        ("08:45", 1),
        ("08:47", 3),  # two alarms, each with its code, plus the "Svara OK <kod>" line
    ]
    bundled = [a for d in ("DSP-B", "DSP-C") for a in alarms_of(pool, d)]
    assert all(f"#{a['patient_id']} (OK {a['ack_code']})" in sms[1].body for a in bundled)
