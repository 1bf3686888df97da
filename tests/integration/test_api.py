"""The JSON API against the real database, through FastAPI's test client (httpx)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from alarms.jobs import sweep_missed_doses
from dashboards.app import create_app
from dosewatch.clock import FakeClock
from tests.auth_helpers import as_admin
from tests.errors import problems

SCHEDULE = {
    "timezone": "Europe/Stockholm",
    "valid_from": "2026-11-20",
    "doses": [{"time": "08:00", "window_min": 45}, {"time": "20:00", "window_min": 45}],
}
DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


@pytest.fixture
def api(pool: ConnectionPool, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(pool, clock)) as client:
        yield as_admin(client, pool)


def make_dispenser(api: TestClient, dispenser_id: str = "DSP-000123") -> int:
    patient = api.post(
        "/api/v1/patients",
        json={"name": "Astrid", "phone": "+46 70 123 45 67", "address": "Storgatan 1, Umeå"},
    )
    assert patient.status_code == 201, patient.text
    r = api.post(
        "/api/v1/dispensers", json={"id": dispenser_id, "patient_id": patient.json()["id"]}
    )
    assert r.status_code == 201, r.text
    return int(patient.json()["id"])


def test_patient_round_trip(api: TestClient) -> None:
    r = api.post(
        "/api/v1/patients",
        json={"name": "Astrid", "phone": "+46 70 123 45 67", "note": "key box 1234"},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["name"] == "Astrid" and body["note"] == "key box 1234" and body["address"] is None
    assert api.get(f"/api/v1/patients/{body['id']}").json() == body
    assert api.get("/api/v1/patients/999999").status_code == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"phone": "+46 70 123"}, "name"),
        ({"name": "A", "phone": "call me"}, "phone"),
        ({"name": "", "phone": "+46 70 123 45 67"}, "name"),
        ({"name": "A", "phone": "+46 70 123 45 67", "shoe_size": 41}, "shoe_size"),
    ],
)
def test_bad_patients_get_a_422_naming_the_field(api: TestClient, body: dict, words: str) -> None:
    r = api.post("/api/v1/patients", json=body)
    assert words in problems(r)


def test_dispenser_rules(api: TestClient) -> None:
    patient_id = make_dispenser(api)
    got = api.get("/api/v1/dispensers/DSP-000123").json()
    assert got["patient_id"] == patient_id and got["schedule_version"] is None
    # Never heard from: presence is all unknown, and an unknown clock is not flagged.
    assert got["presence"] == {
        "online": None,
        "online_changed_at": None,
        "last_seen_at": None,
        "clock_offset_s": None,
        "clock_flagged": False,
    }
    dup = api.post("/api/v1/dispensers", json={"id": "DSP-000123", "patient_id": patient_id})
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]
    orphan = api.post("/api/v1/dispensers", json={"id": "DSP-9", "patient_id": 424242})
    assert "patient 424242 does not exist" in problems(orphan)
    bad_id = api.post("/api/v1/dispensers", json={"id": "no spaces!", "patient_id": patient_id})
    assert "body.id" in problems(bad_id)
    assert api.get("/api/v1/dispensers/NOPE-1").status_code == 404


def test_putting_a_schedule_plans_slots_at_once(api: TestClient, clock: FakeClock) -> None:
    make_dispenser(api)
    r = api.put("/api/v1/dispensers/DSP-000123/schedule", json=SCHEDULE)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    got = api.get("/api/v1/dispensers/DSP-000123/schedule").json()
    assert got["doses"] == SCHEDULE["doses"] and got["timezone"] == "Europe/Stockholm"
    slots = api.get("/api/v1/dispensers/DSP-000123/slots").json()
    assert slots[0]["due_at"] == "2026-11-23T07:00:00Z"
    assert slots[0]["window_end"] == "2026-11-23T07:45:00Z"
    assert slots[0]["state"] == "pending"
    # A new version replaces the future plan; the first one stays readable by version number.
    later = {**SCHEDULE, "doses": [{"time": "09:30", "window_min": 30}]}
    assert api.put("/api/v1/dispensers/DSP-000123/schedule", json=later).json()["version"] == 2
    due = {s["due_at"][11:16] for s in api.get("/api/v1/dispensers/DSP-000123/slots").json()}
    assert due == {"08:30"}  # 09:30 Stockholm = 08:30 UTC in winter


def test_a_dose_due_in_two_minutes_is_watched(api: TestClient, pool: ConnectionPool) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 12, 58, tzinfo=UTC))  # 13:58 local
    with as_admin(TestClient(create_app(pool, clock)), pool) as client:
        make_dispenser(client)
        body = {**SCHEDULE, "doses": [{"time": "14:00", "window_min": 1}]}
        assert client.put("/api/v1/dispensers/DSP-000123/schedule", json=body).status_code == 200
        [first, *_] = client.get("/api/v1/dispensers/DSP-000123/slots").json()
        assert first["due_at"] == "2026-11-23T13:00:00Z"
        clock.advance(timedelta(minutes=3))
        assert len(sweep_missed_doses(pool, clock)) == 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"doses": [{"time": "25:00", "window_min": 45}]}, "HH:MM"),
        ({"doses": [{"time": "8am", "window_min": 45}]}, "HH:MM"),
        ({"doses": [{"time": "08:00", "window_min": 0}]}, "window_min"),
        ({"doses": [{"time": "08:00", "window_min": 241}]}, "window_min"),
        ({"doses": []}, "doses"),
        (
            {"doses": [{"time": "08:00", "window_min": 5}, {"time": "08:00", "window_min": 9}]},
            "same time",
        ),
        ({"valid_from": "someday"}, "valid_from"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(
    api: TestClient, change: dict, words: str
) -> None:
    make_dispenser(api)
    r = api.put("/api/v1/dispensers/DSP-000123/schedule", json={**SCHEDULE, **change})
    assert words in problems(r)


def test_schedule_for_an_unknown_dispenser_is_404(api: TestClient) -> None:
    r = api.put("/api/v1/dispensers/DSP-NOPE/schedule", json=SCHEDULE)
    assert r.status_code == 404 and "DSP-NOPE" in r.json()["detail"]


def test_slot_range_must_be_sane(api: TestClient) -> None:
    make_dispenser(api)
    url = "/api/v1/dispensers/DSP-000123/slots"
    assert api.get(url, params={"from": "2026-11-23T00:00:00"}).status_code == 422  # naive
    assert (
        api.get(
            url, params={"from": "2026-11-23T00:00:00Z", "to": "2026-11-22T00:00:00Z"}
        ).status_code
        == 422
    )
    assert (
        api.get(
            url, params={"from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
        ).status_code
        == 422
    )
    ok = api.get(url, params={"from": "2026-11-23T00:00:00Z", "to": "2026-11-24T00:00:00Z"})
    assert ok.status_code == 200 and ok.json() == []  # no schedule yet


def test_alarm_acknowledge_and_resolve(
    api: TestClient, pool: ConnectionPool, clock: FakeClock
) -> None:
    patient_id = make_dispenser(api)
    api.put("/api/v1/dispensers/DSP-000123/schedule", json=SCHEDULE)
    clock.set(DUE + timedelta(minutes=45))
    sweep_missed_doses(pool, clock)
    [alarm] = api.get("/api/v1/alarms", params={"state": "open"}).json()
    assert alarm["kind"] == "missed_dose" and alarm["patient_id"] == patient_id
    assert alarm["dispenser_id"] == "DSP-000123" and alarm["slot_due_at"] == "2026-11-23T07:00:00Z"
    aid = alarm["id"]

    clock.advance(timedelta(minutes=2))
    ack = api.post(f"/api/v1/alarms/{aid}/acknowledge", json={"by": "nurse.eva"})
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    assert ack.json()["acknowledged_at"] == "2026-11-23T07:47:00Z"
    again = api.post(f"/api/v1/alarms/{aid}/acknowledge")
    assert again.status_code == 200 and again.json()["acknowledged_by"] == "nurse.eva"
    assert api.get("/api/v1/alarms", params={"state": "open"}).json() == []

    no_outcome = api.post(f"/api/v1/alarms/{aid}/resolve", json={"note": "called"})
    assert "outcome" in problems(no_outcome)
    res = api.post(
        f"/api/v1/alarms/{aid}/resolve",
        json={"outcome": "reached_by_phone", "note": "took it at 08:50", "by": "nurse.eva"},
    )
    assert res.status_code == 200
    assert res.json()["state"] == "resolved" and res.json()["outcome"] == "reached_by_phone"
    assert api.post(f"/api/v1/alarms/{aid}/resolve", json={"outcome": "other"}).status_code == 409
    assert api.post(f"/api/v1/alarms/{aid}/acknowledge").status_code == 409
    detail = api.get(f"/api/v1/alarms/{aid}").json()
    actions = [h["action"] for h in detail["history"]]
    assert actions == ["opened", "escalated", "acknowledged", "resolved"]
    assert api.post("/api/v1/alarms/99999/acknowledge").status_code == 404
    assert api.get("/api/v1/alarms", params={"state": "sleeping"}).status_code == 422


def test_quarantine_lists_raw_bytes_and_reason(
    api: TestClient, pool: ConnectionPool, clock: FakeClock
) -> None:
    from dosewatch.db.quarantine import quarantine

    first = clock.now()
    for _ in range(2):  # received twice (a redelivery): one item that says so
        with pool.connection() as conn:
            quarantine(
                conn,
                topic="dosewatch/v1/dispensers/DSP-1/events",
                payload=b"\xff\xfe",
                reason="payload is not UTF-8 (byte 0)",
                received_at=clock.now(),
                dispenser_id="DSP-1",
            )
        clock.advance(timedelta(minutes=1))
    [item] = api.get("/api/v1/quarantine").json()
    assert item["reason"] == "payload is not UTF-8 (byte 0)"
    assert item["repeats"] == 2
    assert datetime.fromisoformat(item["received_at"]) == first
    assert datetime.fromisoformat(item["last_received_at"]) == first + timedelta(minutes=1)
    assert item["payload_text"] is None and item["payload_base64"] == "//4="
    assert api.get("/api/v1/quarantine", params={"dispenser_id": "DSP-2"}).json() == []


def test_openapi_is_served(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert "/api/v1/alarms/{alarm_id}/resolve" in paths and "/api/v1/quarantine" in paths
    assert api.get("/docs").status_code == 200
