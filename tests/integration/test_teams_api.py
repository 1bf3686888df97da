"""Teams, nurses, rosters, escalation policies and a patient's team/contact, through the JSON API
on the real database (FastAPI's test client, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dosewatch.clock import FakeClock
from dosewatch.db import escalation as escalation_sql
from dosewatch.domain.alarms import AlarmKind, Priority
from dosewatch.domain.escalation import DEFAULT_POLICY, Policy
from dosewatch.domain.opening import Subject
from dosewatch.usecases.opening import open_alarms
from tests.auth_helpers import as_admin
from tests.errors import problems
from tests.integration.test_api import make_dispenser

V1 = "/api/v1"
POLICY: dict[str, Any] = {
    "steps": [
        {"target": "patient_contact", "channels": ["sms"], "wait_min": 5},
        {"target": "on_duty", "channels": ["console", "sms"], "wait_min": 10},
        {"target": "lead", "channels": ["voice"], "wait_min": 15},
    ],
    "repeats": 2,
    "remind_after_ack_min": 20,
    "reopen_after_reminder": True,
}


@pytest.fixture
def api(pool: ConnectionPool, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(pool, clock)) as client:
        yield as_admin(client, pool)


def team(api: TestClient, name: str = "Hemsjukvård Umeå natt") -> int:
    r = api.post(f"{V1}/teams", json={"name": name})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def nurse(api: TestClient, team_id: int, name: str, phone: str, **extra: Any) -> int:
    r = api.post(f"{V1}/nurses", json={"team_id": team_id, "name": name, "phone": phone, **extra})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def shift(api: TestClient, team_id: int, nurse_id: int, start: str, end: str, role: str) -> Any:
    body = {"nurse_id": nurse_id, "starts_at": start, "ends_at": end, "role": role}
    return api.post(f"{V1}/teams/{team_id}/shifts", json=body)


def unprocessable(r: Any, *words: str) -> None:
    detail = problems(r)
    for w in words:
        assert w in detail, (w, detail)


# --- teams and nurses ------------------------------------------------------------------------


def test_team_round_trip(api: TestClient) -> None:
    r = api.post(f"{V1}/teams", json={"name": "  Natt Umeå  "})
    assert r.status_code == 201
    created = r.json()
    assert created["name"] == "Natt Umeå" and created["policy_version"] is None
    assert created["created_at"] == "2026-11-23T06:50:00Z"  # the server's clock
    assert api.get(f"{V1}/teams/{created['id']}").json() == created
    assert api.get(f"{V1}/teams").json() == [created]
    dup = api.post(f"{V1}/teams", json={"name": "Natt Umeå"})
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]
    unprocessable(api.post(f"{V1}/teams", json={"name": "  "}), "name")
    unprocessable(api.post(f"{V1}/teams", json={"name": "A", "colour": "red"}), "colour")
    assert api.get(f"{V1}/teams/999").status_code == 404
    assert "team 999 does not exist" in api.get(f"{V1}/teams/999").json()["detail"]


def test_nurse_round_trip_normalises_the_phone(api: TestClient) -> None:
    t1, t2 = team(api, "Natt"), team(api, "Dag")
    r = api.post(f"{V1}/nurses", json={"team_id": t1, "name": "Anna", "phone": "+46 70-123 45 67"})
    assert r.status_code == 201
    anna = r.json()
    assert anna["phone"] == "+46701234567" and anna["language"] == "sv" and anna["active"]
    bo = nurse(api, t2, "Bo", "+46701112233", language="en")
    assert api.get(f"{V1}/nurses/{anna['id']}").json() == anna
    assert [n["name"] for n in api.get(f"{V1}/nurses").json()] == ["Anna", "Bo"]
    assert api.get(f"{V1}/nurses", params={"team_id": t2}).json()[0]["id"] == bo
    assert api.get(f"{V1}/nurses", params={"team_id": 999}).status_code == 404
    assert api.get(f"{V1}/nurses/999").status_code == 404

    r = api.patch(f"{V1}/nurses/{anna['id']}", json={"active": False, "language": "en"})
    assert r.status_code == 200
    assert (r.json()["active"], r.json()["language"], r.json()["phone"]) == (
        False,
        "en",
        "+46701234567",
    )
    r = api.patch(f"{V1}/nurses/{anna['id']}", json={"phone": "+47 912 34 567"})
    assert r.json()["phone"] == "+4791234567" and r.json()["active"] is False
    assert api.patch(f"{V1}/nurses/999", json={"active": True}).status_code == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "A", "phone": "070-123 45 67"}, ("phone", "E.164")),
        ({"name": "A", "phone": "+46 70 12"}, ("phone", "E.164")),
        ({"name": "A", "phone": "+0046701234567"}, ("phone", "E.164")),
        ({"name": "A", "phone": 46701234567}, ("phone",)),
        ({"name": "A", "phone": "+46701234567", "language": "de"}, ("language", "'sv'")),
        ({"name": "", "phone": "+46701234567"}, ("name",)),
        ({"phone": "+46701234567"}, ("name", "Field required")),
        ({"name": "A", "phone": "+46701234567", "team_id": 999}, ("team_id", "team 999")),
        ({"name": "A", "phone": "+46701234567", "shoe": 41}, ("shoe",)),
    ],
)
def test_bad_nurses_get_a_readable_422(api: TestClient, body: dict, words: tuple[str]) -> None:
    t = team(api)
    unprocessable(api.post(f"{V1}/nurses", json={"team_id": t, **body}), *words)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, ("nothing to change",)),
        ({"active": None}, ("nothing to change",)),
        ({"phone": "12345"}, ("phone", "E.164")),
        ({"language": "fi"}, ("language",)),
        ({"team_id": 2}, ("team_id", "Extra inputs")),
        ({"active": "perhaps"}, ("active",)),
    ],
)
def test_bad_nurse_changes_get_a_readable_422(
    api: TestClient, body: dict, words: tuple[str]
) -> None:
    n = nurse(api, team(api), "Anna", "+46701234567")
    unprocessable(api.patch(f"{V1}/nurses/{n}", json=body), *words)


def test_the_actor_header_is_checked(api: TestClient) -> None:
    r = api.post(f"{V1}/teams", json={"name": "A"}, headers={"X-Actor": "x" * 101})
    unprocessable(r, "X-Actor")


# --- shifts ----------------------------------------------------------------------------------


def test_night_shifts_cross_midnight_and_dst_nights(api: TestClient) -> None:
    t = team(api)
    anna = nurse(api, t, "Anna", "+46701234567")
    # Wall-clock 22:00–07:00 each time; the offsets say which instants that means.
    nights = [
        ("2026-11-23T22:00:00+01:00", "2026-11-24T07:00:00+01:00", 540),
        ("2026-03-28T22:00:00+01:00", "2026-03-29T07:00:00+02:00", 480),  # spring forward
        ("2026-10-24T22:00:00+02:00", "2026-10-25T07:00:00+01:00", 600),  # fall back
    ]
    for start, end, minutes in nights:
        r = shift(api, t, anna, start, end, "primary")
        assert r.status_code == 201, r.text
        assert r.json()["duration_min"] == minutes
        assert r.json()["nurse_name"] == "Anna" and r.json()["team_id"] == t
    got = api.get(
        f"{V1}/teams/{t}/shifts",
        params={"from": "2026-11-24T00:00:00+01:00", "to": "2026-11-25T00:00:00+01:00"},
    ).json()
    # The shift already running at `from` (it began the evening before) is listed.
    assert [(s["starts_at"], s["ends_at"]) for s in got] == [
        ("2026-11-23T21:00:00Z", "2026-11-24T06:00:00Z")
    ]
    # Default period: now (06:50Z on 23 Nov) and 7 days on.
    assert len(api.get(f"{V1}/teams/{t}/shifts").json()) == 1
    spring = api.get(
        f"{V1}/teams/{t}/shifts", params={"from": "2026-03-29T01:30:00Z", "to": "2026-03-29T02:00Z"}
    ).json()
    assert spring[0]["duration_min"] == 480


def test_shift_rules(api: TestClient) -> None:
    t, other = team(api, "Natt"), team(api, "Dag")
    anna = nurse(api, t, "Anna", "+46701234567")
    bo = nurse(api, other, "Bo", "+46701112233")
    gone = nurse(api, t, "Cia", "+46701119999")
    api.patch(f"{V1}/nurses/{gone}", json={"active": False})
    start, end = "2026-11-23T22:00:00+01:00", "2026-11-24T07:00:00+01:00"

    unprocessable(shift(api, t, anna, "2026-11-23T22:00:00", end, "primary"), "starts_at", "offset")
    unprocessable(shift(api, t, anna, start, "2026-11-24T07:00", "primary"), "ends_at", "offset")
    unprocessable(shift(api, t, anna, end, start, "primary"), "ends_at must be after starts_at")
    unprocessable(shift(api, t, anna, start, "2026-12-01T07:00Z", "primary"), "7 days")
    unprocessable(shift(api, t, anna, start, end, "boss"), "role", "'primary'")
    unprocessable(shift(api, t, anna, "tonight", end, "primary"), "starts_at")
    unprocessable(shift(api, t, bo, start, end, "primary"), "belongs to team")
    unprocessable(shift(api, t, gone, start, end, "primary"), "inactive")
    unprocessable(shift(api, t, 999, start, end, "primary"), "nurse 999 does not exist")
    assert shift(api, 999, anna, start, end, "primary").status_code == 404

    first = shift(api, t, anna, start, end, "primary")
    assert first.status_code == 201
    clash = shift(api, t, anna, "2026-11-24T06:00:00+01:00", "2026-11-24T15:00+01:00", "backup")
    assert clash.status_code == 409 and f"shift {first.json()['id']}" in clash.json()["detail"]
    # Touching is not overlapping: the day shift starts when the night ends.
    assert shift(api, t, anna, end, "2026-11-24T15:00+01:00", "lead").status_code == 201

    unprocessable(api.get(f"{V1}/teams/{t}/shifts", params={"from": "2026-11-23T00:00"}), "from")
    bad_order = {"from": "2026-11-24T00:00Z", "to": "2026-11-23T00:00Z"}
    unprocessable(api.get(f"{V1}/teams/{t}/shifts", params=bad_order), "after from")
    too_long = {"from": "2026-11-01T00:00Z", "to": "2027-01-10T00:00Z"}
    unprocessable(api.get(f"{V1}/teams/{t}/shifts", params=too_long), "62 days")
    assert api.get(f"{V1}/teams/999/shifts").status_code == 404

    assert api.delete(f"{V1}/shifts/{first.json()['id']}").status_code == 204
    assert api.delete(f"{V1}/shifts/{first.json()['id']}").status_code == 404
    assert shift(api, t, anna, start, end, "primary").status_code == 201  # the slot is free again


# --- roster gaps -----------------------------------------------------------------------------


def test_roster_gaps_are_flagged_ahead_of_time(api: TestClient) -> None:
    t = team(api)
    anna = nurse(api, t, "Anna", "+46701234567")
    bo = nurse(api, t, "Bo", "+46701112233")
    lead = nurse(api, t, "Lena", "+46701110000")
    # Tuesday 24 Nov, local time: Anna nights, Bo 07–15, nobody 15–22 but the lead.
    roster = [
        (anna, "2026-11-23T22:00+01:00", "2026-11-24T07:00+01:00", "primary"),
        (bo, "2026-11-24T07:00+01:00", "2026-11-24T15:00+01:00", "backup"),
        (lead, "2026-11-24T15:00+01:00", "2026-11-24T22:00+01:00", "lead"),
        (anna, "2026-11-24T22:00+01:00", "2026-11-25T07:00+01:00", "primary"),
    ]
    for nurse_id, start, end, role in roster:
        assert shift(api, t, nurse_id, start, end, role).status_code == 201
    period = {"from": "2026-11-23T22:00:00+01:00", "to": "2026-11-25T07:00:00+01:00"}

    r = api.get(f"{V1}/teams/{t}/roster-gaps", params=period)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["covered"] is False and body["from"] == "2026-11-23T21:00:00Z"
    assert body["gaps"] == [
        {
            "starts_at": "2026-11-24T14:00:00Z",
            "ends_at": "2026-11-24T21:00:00Z",
            "duration_min": 420,
            "unreachable_nurse_ids": [],
        }
    ]

    # Anna is deactivated: her shifts stay, and both nights become gaps that name her.
    api.patch(f"{V1}/nurses/{anna}", json={"active": False})
    gaps = api.get(f"{V1}/teams/{t}/roster-gaps", params=period).json()["gaps"]
    assert [(g["starts_at"][11:16], g["ends_at"][11:16]) for g in gaps] == [
        ("21:00", "06:00"),
        ("14:00", "06:00"),
    ]
    assert [g["unreachable_nurse_ids"] for g in gaps] == [[anna], [anna]]

    # A fully staffed period is covered.
    morning = {"from": "2026-11-24T07:00:00+01:00", "to": "2026-11-24T15:00:00+01:00"}
    assert api.get(f"{V1}/teams/{t}/roster-gaps", params=morning).json() == {
        "team_id": t,
        "from": "2026-11-24T06:00:00Z",
        "to": "2026-11-24T14:00:00Z",
        "covered": True,
        "gaps": [],
    }
    # An empty roster is one gap, from now for 7 days by default.
    empty = api.get(f"{V1}/teams/{team(api, 'Tom')}/roster-gaps").json()
    assert [(g["starts_at"], g["ends_at"]) for g in empty["gaps"]] == [
        ("2026-11-23T06:50:00Z", "2026-11-30T06:50:00Z")
    ]
    assert api.get(f"{V1}/teams/999/roster-gaps").status_code == 404
    unprocessable(api.get(f"{V1}/teams/{t}/roster-gaps", params={"to": "2026-11-24"}), "to")


# --- escalation policies ---------------------------------------------------------------------


def test_policy_versions_and_history(api: TestClient, clock: FakeClock) -> None:
    t = team(api)
    default = api.get(f"{V1}/teams/{t}/escalation-policy").json()
    assert default["is_default"] is True and default["version"] is None
    assert default["policy"] == DEFAULT_POLICY.to_json()

    r = api.put(f"{V1}/teams/{t}/escalation-policy", json=POLICY, headers={"X-Actor": "chef"})
    assert r.status_code == 200, r.text
    v1 = r.json()
    assert (v1["version"], v1["is_default"], v1["created_by"]) == (1, False, "chef")
    assert v1["policy"] == POLICY and v1["created_at"] == "2026-11-23T06:50:00Z"
    assert api.get(f"{V1}/teams/{t}").json()["policy_version"] == 1

    # The same policy again (a retried request) stores no new version.
    again = api.put(f"{V1}/teams/{t}/escalation-policy", json=POLICY)
    assert again.json()["version"] == 1 and again.json()["created_by"] == "chef"

    clock.advance(timedelta(hours=1))
    changed = {"steps": [{"target": "team", "channels": ["sms"], "wait_min": 0}]}
    v2 = api.put(f"{V1}/teams/{t}/escalation-policy", json=changed).json()
    assert (v2["version"], v2["created_by"]) == (2, "token:tests")  # the caller, by default
    # Omitted fields take the policy dataclass's defaults.
    defaults = {"repeats": 0, "remind_after_ack_min": 30, "reopen_after_reminder": False}
    assert v2["policy"] == {**changed, **defaults}
    assert api.get(f"{V1}/teams/{t}/escalation-policy").json() == v2

    history = api.get(f"{V1}/teams/{t}/escalation-policy/history").json()
    assert [(h["version"], h["created_by"], h["created_at"]) for h in history] == [
        (1, "chef", "2026-11-23T06:50:00Z"),
        (2, "token:tests", "2026-11-23T07:50:00Z"),
    ]
    assert history[0]["policy"] == POLICY
    for path in ("escalation-policy", "escalation-policy/history"):
        assert api.get(f"{V1}/teams/999/{path}").status_code == 404
    assert api.put(f"{V1}/teams/999/escalation-policy", json=POLICY).status_code == 404


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ({"steps": []}, ("a policy needs at least one step",)),
        ({**POLICY, "repeats": 11}, ("repeats must be between 0 and 10",)),
        (
            {"steps": [{"target": "on_duty", "channels": [], "wait_min": 300}]},
            ("step 1 has no channel", "step 1: wait_min must be between 0 and 240"),
        ),
        (
            {
                "steps": [
                    {"target": "on_duty", "channels": ["sms"], "wait_min": 5},
                    {"target": "patient_contact", "channels": ["voice"], "wait_min": 5},
                ]
            },
            ("only the first step may remind", "reminded by SMS only"),
        ),
        (
            {"steps": [{"target": "patient_contact", "channels": ["sms"], "wait_min": 5}]},
            ("must reach a nurse",),
        ),
        ({**POLICY, "remind_after_ack_min": 0}, ("remind_after_ack_min must be between",)),
        (
            {"steps": [{"target": "mayor", "channels": ["sms"], "wait_min": 5}]},
            ("steps.0.target", "'on_duty'"),
        ),
        (
            {"steps": [{"target": "lead", "channels": ["sms", "pigeon"], "wait_min": 5}]},
            ("steps.0.channels.1",),
        ),
        (
            {"steps": [{"target": "lead", "channels": ["sms", "sms"], "wait_min": 5}]},
            ("sms is listed twice",),
        ),
        ({"steps": [{"target": "lead", "channels": ["sms"], "wait_min": 2.5}]}, ("wait_min",)),
        ({**POLICY, "escalate_to_god": True}, ("escalate_to_god",)),
    ],
)
def test_bad_policies_are_refused_with_the_validate_sentences(
    api: TestClient, policy: dict, words: tuple[str]
) -> None:
    t = team(api)
    unprocessable(api.put(f"{V1}/teams/{t}/escalation-policy", json=policy), *words)
    assert api.get(f"{V1}/teams/{t}/escalation-policy/history").json() == []


def test_a_new_alarm_copies_the_patients_team_and_current_policy(
    api: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """What the API stores is what opening an alarm (dosewatch.usecases.opening) reads."""
    patient = make_dispenser(api)
    t = team(api)
    assert api.put(f"{V1}/patients/{patient}/team", json={"team_id": t}).status_code == 200
    api.put(f"{V1}/teams/{t}/escalation-policy", json=POLICY)
    subject = Subject(AlarmKind.MISSED_DOSE, Priority.MEDIUM, "DSP-000123", patient, t)
    [alarm_id] = open_alarms(conn, [subject], datetime.now(UTC))
    row = conn.execute(
        "SELECT a.team_id, pv.body AS policy FROM alarms a"
        " JOIN policy_versions pv ON pv.id = a.policy_id WHERE a.id = %s",
        (alarm_id,),
    ).fetchone()
    assert row is not None and row["team_id"] == t
    assert Policy.from_json(row["policy"]) == Policy.from_json(POLICY)


# --- a patient's team and contact ------------------------------------------------------------


def test_patient_team(api: TestClient) -> None:
    patient = make_dispenser(api)
    assert api.get(f"{V1}/patients/{patient}").json()["team_id"] is None
    t = team(api)
    r = api.put(f"{V1}/patients/{patient}/team", json={"team_id": t})
    assert r.status_code == 200 and r.json()["team_id"] == t and r.json()["name"] == "Astrid"
    assert api.get(f"{V1}/patients/{patient}").json()["team_id"] == t
    assert (
        api.put(f"{V1}/patients/{patient}/team", json={"team_id": None}).json()["team_id"] is None
    )
    unprocessable(api.put(f"{V1}/patients/{patient}/team", json={"team_id": 999}), "team 999")
    unprocessable(api.put(f"{V1}/patients/{patient}/team", json={}), "team_id")
    assert api.put(f"{V1}/patients/999/team", json={"team_id": t}).status_code == 404


def test_patient_contact_and_consent(
    api: TestClient, clock: FakeClock, pool: ConnectionPool
) -> None:
    patient = make_dispenser(api)
    url = f"{V1}/patients/{patient}/contact"
    assert api.get(url).json() == {
        "patient_id": patient,
        "contact_phone": None,
        "contact_sms_consent_at": None,
        "sms_consent": False,
    }
    r = api.put(url, json={"contact_phone": "+46 70 999 88 77", "sms_consent": True})
    assert r.status_code == 200, r.text
    assert r.json()["contact_phone"] == "+46709998877" and r.json()["sms_consent"] is True
    assert r.json()["contact_sms_consent_at"] == "2026-11-23T06:50:00Z"
    with pool.connection() as c:  # the escalation's patient step now has a number
        assert escalation_sql.patient_contact(c, patient) == "+46709998877"

    # Consent belongs to the number: the same number keeps the first consent time,
    clock.advance(timedelta(days=1))
    same = api.put(url, json={"contact_phone": "+46709998877", "sms_consent": True}).json()
    assert same["contact_sms_consent_at"] == "2026-11-23T06:50:00Z"
    # a new number is a new consent,
    new = api.put(url, json={"contact_phone": "+46701010101", "sms_consent": True}).json()
    assert new["contact_sms_consent_at"] == "2026-11-24T06:50:00Z"
    # and withdrawing it keeps the number but stops the reminders.
    off = api.put(url, json={"contact_phone": "+46701010101", "sms_consent": False}).json()
    assert off["sms_consent"] is False and off["contact_sms_consent_at"] is None
    assert api.get(url).json() == off
    with pool.connection() as c:
        assert escalation_sql.patient_contact(c, patient) is None

    unprocessable(api.put(url, json={"contact_phone": None, "sms_consent": True}), "needs a")
    unprocessable(api.put(url, json={"contact_phone": "0709", "sms_consent": False}), "E.164")
    unprocessable(api.put(url, json={"contact_phone": "+46709998877"}), "sms_consent")
    assert api.get(f"{V1}/patients/999/contact").status_code == 404
    r = api.put(f"{V1}/patients/999/contact", json={"contact_phone": None, "sms_consent": False})
    assert r.status_code == 404
