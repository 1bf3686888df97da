"""Training mode end to end: a practice alarm is triggered through the API, opened by the real
opening, shown in the console marked training, paged through the real ``twilio`` client to the
stand-in with the training prefix and only to the training roster, and left out of every report.

The cast: a real team (Anna, primary, and Lars, lead) with a real patient on DSP-1; a training
team set up by the use case (two practice phones), with a third training nurse whose phone is
also Anna's, the number a training alarm must never page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from fhirclient.models import medicationadministration
from fhirclient.models import patient as fhir_patient
from psycopg_pool import ConnectionPool

from alarms.fanout import fan_out
from alarms.twilio_notifier import TwilioNotifier
from dashboards.app import create_app
from dosewatch.clock import FakeClock
from dosewatch.db import teams as team_sql
from dosewatch.db.alarms import training_sql
from dosewatch.db.reports_alarms import REAL_ALARM
from dosewatch.domain.training import normalise_number
from dosewatch.usecases import training
from tests.auth_helpers import bearer
from tests.helpers import add_dispenser
from tests.scenario import Scenario, nurse_and_lead_with_a_patient, put_patient_in_team
from tests.twilio_standin import TwilioStandIn

ANNA, LARS = "+46701111111", "+46702222222"
PRACTICE = ["+46709000001", "+46709000002"]
FROM, PUBLIC = "+46101234567", "https://dosewatch.example.se"
DAY = (datetime(2026, 11, 23, 0, 0, tzinfo=UTC), datetime(2026, 11, 23, 23, 0, tzinfo=UTC))


@pytest.fixture
def standin(clock: FakeClock) -> Iterator[TwilioStandIn]:
    with TwilioStandIn(clock=clock.now) as s:
        yield s


@pytest.fixture
def world(
    pool: ConnectionPool, clock: FakeClock, standin: TwilioStandIn
) -> Iterator[tuple[TestClient, Scenario, int]]:
    """The real team and patient, the training team (returned) and the API as an admin."""
    nurse_and_lead_with_a_patient(pool, clock.now(), (ANNA, LARS), DAY)
    with pool.connection() as conn:
        made = training.set_up(conn, "Övning", PRACTICE, 2, clock.now())
        # A third practice nurse, on shift, whose phone is also a real nurse's (Anna's).
        shared = team_sql.create_nurse(
            conn, team_id=made.team_id, name="Övning 3", phone="+46 70 111 11 11",
            language="sv", now=clock.now(),
        )  # fmt: skip
        team_sql.create_shift(
            conn, team_id=made.team_id, nurse_id=shared["id"], starts_at=DAY[0],
            ends_at=DAY[1], role="backup",
        )  # fmt: skip
    notifier = TwilioNotifier(
        standin.account_sid, standin.auth_token, FROM, PUBLIC, api_url=standin.url
    )
    app = create_app(pool, clock, twilio_auth_token=standin.auth_token, public_url=PUBLIC)
    with TestClient(app) as client:
        client.headers.update(bearer(pool))
        yield client, Scenario(pool, clock, notifier), made.team_id


def _trigger(client: TestClient, dispenser: str, kind: str) -> tuple[int, dict]:
    r = client.post("/api/v1/training/alarms", json={"dispenser_id": dispenser, "kind": kind})
    return r.status_code, r.json()


def test_a_triggered_alarm_is_marked_everywhere_and_pages_only_the_practice_phones(
    world: tuple[TestClient, Scenario, int], standin: TwilioStandIn, clock: FakeClock
) -> None:
    client, scenario, team_id = world
    status, alarm = _trigger(client, f"TRN-{team_id}-1", "missed_dose")
    assert status == 201, alarm
    assert (alarm["kind"], alarm["training"], alarm["team_id"]) == ("missed_dose", True, team_id)
    assert client.get(f"/api/v1/alarms/{alarm['id']}").json()["training"] is True
    [listed] = [a for a in client.get("/api/v1/alarms").json() if a["id"] == alarm["id"]]
    assert listed["training"] is True
    [shown] = client.get("/api/v1/console/alarms").json()
    assert (shown["id"], shown["training"], shown["team_name"]) == (alarm["id"], True, "Övning")
    detail = client.get(f"/api/v1/console/alarms/{alarm['id']}").json()
    assert detail["alarm"]["training"] and detail["patient"]["training"]
    opened = [h for h in detail["history"] if h["action"] == "opened"]
    assert opened[0]["via"] == "training" and opened[0]["detail"]["source"] == "training"

    # The escalation as on a real night, through the real twilio client, to its last step
    # (everyone on duty) at 30 min; DSP-1's real 08:00 window closes only after this.
    scenario.run_until(clock.now() + timedelta(minutes=50))
    to = {r["To"] for r in standin.sms} | {r["To"] for r in standin.calls}
    assert to and to <= set(PRACTICE)  # never Anna's number, though a practice nurse has it
    assert all(r["Body"].startswith("TRÄNING: dosewatch: Missad dos") for r in standin.sms)
    history = client.get(f"/api/v1/alarms/{alarm['id']}").json()["history"]
    withheld = [w for h in history if h["action"] == "escalated" for w in h["detail"]["withheld"]]
    assert withheld and all(w["channel"] in ("sms", "voice") for w in withheld)
    # The real team heard nothing at all.
    assert not scenario.sent_to(ANNA) and not scenario.sent_to(LARS)


def test_every_kind_can_be_triggered_and_each_only_once_while_unresolved(
    world: tuple[TestClient, Scenario, int],
) -> None:
    client, _, team_id = world
    dispenser = f"TRN-{team_id}-2"
    kinds = {
        "missed_dose": "missed_dose",
        "status_unknown": "dose_status_unknown",
        "help_button": "help_button",
        "jam": "device_fault",
        "offline": "dispenser_offline",
    }
    for trigger, kind in kinds.items():
        status, alarm = _trigger(client, dispenser, trigger)
        assert (status, alarm["kind"], alarm["training"]) == (201, kind, True)
    status, again = _trigger(client, dispenser, "jam")
    assert status == 409 and "already has an unresolved device_fault" in again["detail"]


def test_refused_for_a_real_teams_dispenser_and_for_bad_input(
    world: tuple[TestClient, Scenario, int], pool: ConnectionPool
) -> None:
    client, _, _ = world
    status, body = _trigger(client, "DSP-1", "help_button")
    assert status == 409 and "not a training team's" in body["detail"]
    status, body = _trigger(client, "NOPE-1", "help_button")
    assert status == 422 and body["detail"][0]["loc"] == ["body", "dispenser_id"]
    assert _trigger(client, "DSP-1", "fire")[0] == 422
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM alarms").fetchone() == {"n": 0}
    nurse = client.post(
        "/api/v1/training/alarms",
        json={"dispenser_id": "DSP-1", "kind": "jam"},
        headers=bearer(pool, "nurse", 1),
    )
    assert nurse.status_code == 403


def test_the_flag_is_audited_and_changes_only_on_an_empty_team(
    world: tuple[TestClient, Scenario, int],
) -> None:
    client, _, team_id = world
    empty = client.post("/api/v1/teams", json={"name": "Nattövning"}).json()
    assert empty["training"] is False
    r = client.put(
        f"/api/v1/teams/{empty['id']}/training", json={"training": True, "reason": "övning"}
    )
    assert r.status_code == 200 and r.json()["training"] is True
    audit = client.get("/api/v1/audit", params={"object_type": "team"}).json()
    assert any(
        e["object_id"] == str(empty["id"]) and e["detail"].get("training") is True for e in audit
    )
    r = client.put(f"/api/v1/teams/{team_id}/training", json={"training": False})
    assert r.status_code == 409 and "only an empty team" in r.json()["detail"]
    assert client.put("/api/v1/teams/999/training", json={"training": True}).status_code == 404


def test_a_patient_with_a_record_stays_on_its_side(
    world: tuple[TestClient, Scenario, int], clock: FakeClock
) -> None:
    client, scenario, team_id = world
    scenario.run_until(clock.now() + timedelta(hours=2))  # DSP-1's 08:00 dose is missed
    r = client.put("/api/v1/patients/1/team", json={"team_id": team_id})
    assert r.status_code == 409 and "cannot move into a training team" in r.json()["detail"]


def test_reports_and_grafana_leave_the_training_team_out(
    world: tuple[TestClient, Scenario, int], pool: ConnectionPool, clock: FakeClock
) -> None:
    """A training patient with the same schedule misses the same dose as the real one; the
    municipality's figures are the real patient's alone, as if training never happened."""
    client, scenario, team_id = world
    patient = add_dispenser(pool, "TRN-SCHED", clock.now())
    put_patient_in_team(pool, patient, team_id)  # new: nothing recorded yet
    assert _trigger(client, f"TRN-{team_id}-1", "help_button")[0] == 201
    scenario.run_until(clock.now() + timedelta(hours=2))
    with pool.connection() as conn:
        missed = conn.execute(
            "SELECT dispenser_id FROM dose_slots WHERE state = 'missed' ORDER BY 1"
        ).fetchall()
    assert [m["dispenser_id"] for m in missed] == ["DSP-1", "TRN-SCHED"]
    month = {"month": "2026-11"}
    m = client.get("/api/v1/reports/municipality", params=month).json()
    assert (m["figures"]["missed"], m["figures"]["patients"]) == (1, 1)
    assert team_id not in {t["team_id"] for t in m["teams"]}
    a = client.get("/api/v1/reports/alarms", params=month).json()
    assert a["alarms"] == 1  # DSP-1's; not the help button, not TRN-SCHED's missed dose
    e = client.get("/api/v1/reports/economics", params=month).json()
    with pool.connection() as conn:
        days = conn.execute(
            "SELECT dispenser_id, count(*) AS n FROM adherence_daily GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [d["dispenser_id"] for d in days] == ["DSP-1", "TRN-SCHED"]
    # DSP-1's dispenser-days alone (with TRN-SCHED's it would be twice as many).
    assert e["dispenser_months"] == round(days[0]["n"] / 30.4375, 2)
    assert days[0]["n"] == days[1]["n"]
    assert client.get(f"/api/v1/reports/teams/{team_id}", params=month).status_code == 404
    assert client.get(f"/api/v1/reports/patients/{patient}", params=month).status_code == 404
    with pool.connection() as conn:
        views = conn.execute(
            "SELECT (SELECT count(*) FROM reporting.alarm_facts) AS alarms,"
            " (SELECT sum(missed) FROM reporting.adherence_team_daily) AS missed,"
            " (SELECT count(*) FROM reporting.teams WHERE team_id = %s) AS teams",
            (team_id,),
        ).fetchone()
    assert views == {"alarms": 1, "missed": 1, "teams": 0}


def test_a_training_team_is_no_reportable_team_it_answers_404(
    world: tuple[TestClient, Scenario, int],
) -> None:
    """Not zeros: those would pass the team off as a real one with nothing to report."""
    client, _, team_id = world
    month = {"month": "2026-11"}
    for path in ("alarms", "economics", "insights"):
        r = client.get(f"/api/v1/reports/{path}", params={**month, "team_id": team_id})
        assert r.status_code == 404, (path, r.text)
        assert r.json()["detail"] == f"team {team_id} is a training team: it is in no report"
    r = client.get("/api/v1/reports/alarms", params={**month, "team_id": 99999})
    assert (r.status_code, r.json()["detail"]) == (404, "team 99999 does not exist")


def test_the_handover_counts_leave_training_alarms_out_and_list_them_marked(
    world: tuple[TestClient, Scenario, int], clock: FakeClock
) -> None:
    client, scenario, team_id = world
    assert _trigger(client, f"TRN-{team_id}-1", "help_button")[0] == 201
    scenario.run_until(clock.now() + timedelta(hours=2))  # DSP-1's dose is missed: a real alarm
    h = client.get("/api/v1/console/handover", params={"hours": 24}).json()
    assert [(r["kind"], r["n"]) for r in h["opened"]] == [("missed_dose", 1)]
    assert h["opened_total"] == 1
    # Still shown to the shift, marked training, like everywhere in the console.
    active = {a["kind"]: a["training"] for a in h["still_active"]}
    assert active == {"missed_dose": False, "help_button": True}


def test_fhir_labels_a_training_patients_resources_as_test_data(
    world: tuple[TestClient, Scenario, int], pool: ConnectionPool, clock: FakeClock
) -> None:
    client, scenario, team_id = world
    patient = add_dispenser(pool, "TRN-SCHED", clock.now())
    put_patient_in_team(pool, patient, team_id)
    scenario.run_until(clock.now() + timedelta(hours=2))  # its 08:00 dose is missed
    htest = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST",
              "display": "test health data"}]  # fmt: skip
    body = client.get(f"/fhir/R4/Patient/{patient}").json()
    fhir_patient.Patient(body)  # valid R4
    assert body["meta"]["security"] == htest
    assert client.get("/fhir/R4/Device/TRN-SCHED").json()["meta"]["security"] == htest
    bundle = client.get("/fhir/R4/MedicationAdministration", params={"patient": patient}).json()
    [entry] = bundle["entry"]
    medicationadministration.MedicationAdministration(entry["resource"])
    assert entry["resource"]["meta"]["security"] == htest
    assert "meta" not in client.get("/fhir/R4/Patient/1").json()  # a real patient: no label


def test_scaip_never_gets_a_training_alarm_and_webhooks_mark_it(
    world: tuple[TestClient, Scenario, int], pool: ConnectionPool, clock: FakeClock
) -> None:
    client, _, team_id = world
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO scaip_settings (team_id, centre_uri, controller_id, kinds, updated_at,"
            " updated_by) VALUES (%s, 'sip:arc@127.0.0.1', 'X', '{missed_dose}', %s, 't')",
            (team_id, clock.now()),
        )
    hook = client.post(
        "/api/v1/webhooks",
        json={"url": "https://receiver.example.se/hook", "events": ["alarm.opened"]},
    )
    assert hook.status_code == 201, hook.text
    assert _trigger(client, f"TRN-{team_id}-1", "missed_dose")[0] == 201
    fan_out(pool, clock)
    with pool.connection() as conn:
        forwards = conn.execute("SELECT count(*) AS n FROM scaip_forwards").fetchone()
        payloads = conn.execute("SELECT payload FROM webhook_deliveries").fetchall()
    assert forwards == {"n": 0}
    assert [p["payload"]["alarm"]["training"] for p in payloads] == [True]


def test_the_sql_number_rule_is_the_domains(pool: ConnectionPool, clock: FakeClock) -> None:
    nurse_and_lead_with_a_patient(pool, clock.now(), ("+46 70-111 11 11", LARS), DAY)
    with pool.connection() as conn:
        found = team_sql.real_numbers(conn, ["+46701111111", "+46 70 222 22 22", "+4670999"])
    assert found == {normalise_number(ANNA), normalise_number(LARS)}


def test_one_sql_rule_for_a_training_alarm_even_one_that_pages_no_team(
    world: tuple[TestClient, Scenario, int], pool: ConnectionPool
) -> None:
    """``db.alarms.training_sql`` is the only copy: the console's listing and the reports' and
    handover's REAL_ALARM agree, also for an alarm with no team (it goes by its patient's)."""
    client, _, team_id = world
    assert _trigger(client, f"TRN-{team_id}-1", "help_button")[0] == 201
    with pool.connection() as conn:
        conn.execute("UPDATE alarms SET team_id = NULL")  # pages no team: its patient's decides
        rows = conn.execute(
            f"SELECT a.id, {training_sql('a')} AS training, {REAL_ALARM} AS real"
            " FROM alarms a JOIN patients p ON p.id = a.patient_id"
        ).fetchall()
    assert rows and all(r["training"] and not r["real"] for r in rows)
    listed = client.get("/api/v1/alarms", params={"state": "open"}).json()
    assert listed and all(a["training"] for a in listed)
