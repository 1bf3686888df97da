"""Schedules, absences and previews through the running service: MQTT in, API out.

The gateway (real broker) and the API share one FakeClock; the sweep runs on the moved clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from alarms.jobs import sweep_missed_doses
from dashboards.app import create_app
from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from gateway.mqtt import Gateway
from tests.auth_helpers import as_admin
from tests.conftest import wait_for
from tests.errors import problems

Publish = Callable[[str, bytes], None]
DAILY = {
    "timezone": "Europe/Stockholm",
    "valid_from": "2026-11-01",
    "doses": [
        {"time": "08:00", "window_min": 45, "label": "morning"},
        {"time": "20:00", "window_min": 45, "label": "evening"},
    ],
}
MORNING = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 Stockholm, winter time
EVENING = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)


@pytest.fixture
def api(pool: ConnectionPool, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(pool, clock)) as client:
        yield as_admin(client, pool)


def new_dispenser(api: TestClient, dispenser_id: str) -> None:
    patient = api.post("/api/v1/patients", json={"name": "Astrid", "phone": "+46 70 123 45 67"})
    assert (
        api.post(
            "/api/v1/dispensers", json={"id": dispenser_id, "patient_id": patient.json()["id"]}
        ).status_code
        == 201
    )


def states(api: TestClient, dispenser_id: str, start: str, end: str) -> dict[str, str]:
    r = api.get(f"/api/v1/dispensers/{dispenser_id}/slots", params={"from": start, "to": end})
    assert r.status_code == 200, r.text
    return {s["due_at"]: s["state"] for s in r.json()}


def topic(dispenser_id: str) -> str:
    return f"dosewatch/v1/dispensers/{dispenser_id}/events"


def test_a_change_at_noon_keeps_the_morning_replans_the_evening_and_records_who(
    api: TestClient, gateway: Gateway, publisher: Publish, clock: FakeClock, pool: ConnectionPool
) -> None:
    new_dispenser(api, "DSP-1")
    put = api.put("/api/v1/dispensers/DSP-1/schedule", json={**DAILY, "changed_by": "admin.anna"})
    assert put.status_code == 200, put.text
    assert len(put.json()["preview"]) == 14  # 7 days x 2 doses

    clock.set(MORNING + timedelta(minutes=4))
    publisher(topic("DSP-1"), event("DSP-1", 1, "dose_taken", clock.now(), dose_due_at=MORNING))
    day = ("2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z")
    wait_for(
        lambda: states(api, "DSP-1", *day).get("2026-11-23T07:00:00Z") == "taken",
        what="the morning dose taken",
    )

    clock.set(datetime(2026, 11, 23, 11, 0, tzinfo=UTC))  # 12:00 in Stockholm
    later = {
        **DAILY,
        "changed_by": "nurse.bo",
        "doses": [DAILY["doses"][0], {"time": "21:00", "window_min": 45, "label": "evening"}],
    }
    assert api.put("/api/v1/dispensers/DSP-1/schedule", json=later).status_code == 200

    slots = api.get("/api/v1/dispensers/DSP-1/slots", params={"from": day[0], "to": day[1]}).json()
    assert [(s["due_at"], s["state"], s["schedule_version"], s["local_time"]) for s in slots] == [
        ("2026-11-23T07:00:00Z", "taken", 1, "08:00"),
        ("2026-11-23T20:00:00Z", "pending", 2, "21:00"),
    ]
    history = api.get("/api/v1/dispensers/DSP-1/schedule/history").json()
    assert [(h["version"], h["created_by"]) for h in history] == [
        (1, "admin.anna"),
        (2, "nurse.bo"),
    ]
    assert history[1]["effective_from"] == "2026-11-23T11:00:00Z"
    assert api.get("/api/v1/dispensers/DSP-1/schedule").json()["version"] == 2

    # The evening under the new version is watched: nothing taken → one alarm at 21:45 local.
    clock.set(datetime(2026, 11, 23, 20, 45, tzinfo=UTC))
    assert len(sweep_missed_doses(pool, clock)) == 1
    [alarm] = api.get("/api/v1/alarms").json()
    assert alarm["slot_due_at"] == "2026-11-23T20:00:00Z"


def test_an_absence_suspends_its_slots_and_ending_it_early_replans_the_rest(
    api: TestClient, gateway: Gateway, clock: FakeClock, pool: ConnectionPool
) -> None:
    new_dispenser(api, "DSP-2")
    api.put("/api/v1/dispensers/DSP-2/schedule", json=DAILY)
    clock.set(MORNING + timedelta(minutes=10))  # the 08:00 window is open
    r = api.post(
        "/api/v1/dispensers/DSP-2/absences",
        json={
            "starts_at": "2026-11-23T06:55:00Z",
            "ends_at": "2026-11-26T00:00:00Z",
            "reason": "in hospital",
            "by": "nurse.bo",
        },
    )
    assert r.status_code == 201, r.text
    absence = r.json()
    window = ("2026-11-23T00:00:00Z", "2026-11-26T00:00:00Z")
    assert set(states(api, "DSP-2", *window).values()) == {"suspended"}

    clock.set(datetime(2026, 11, 24, 6, 0, tzinfo=UTC))  # back home early
    assert sweep_missed_doses(pool, clock) == []
    ended = api.post(f"/api/v1/absences/{absence['id']}/end", json={"by": "nurse.bo"})
    assert ended.status_code == 200 and ended.json()["effective_end"] == "2026-11-24T06:00:00Z"
    assert states(api, "DSP-2", *window) == {
        "2026-11-23T07:00:00Z": "suspended",
        "2026-11-23T19:00:00Z": "suspended",
        "2026-11-24T07:00:00Z": "pending",
        "2026-11-24T19:00:00Z": "pending",
        "2026-11-25T07:00:00Z": "pending",
        "2026-11-25T19:00:00Z": "pending",
    }
    clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    opened = sweep_missed_doses(pool, clock)
    assert len(opened) == 1  # only the first dose after the absence; none for suspended slots
    assert api.post(f"/api/v1/absences/{absence['id']}/end").status_code == 409
    assert api.post("/api/v1/absences/424242/end").status_code == 404
    [listed] = api.get("/api/v1/dispensers/DSP-2/absences").json()
    assert listed["reason"] == "in hospital" and listed["ended_by"] == "nurse.bo"


def test_preview_marks_daylight_saving_days_and_stores_nothing(
    api: TestClient, pool: ConnectionPool
) -> None:
    new_dispenser(api, "DSP-3")
    api.put(
        "/api/v1/dispensers/DSP-3/schedule",
        json={**DAILY, "doses": [{"time": "02:30", "window_min": 30}]},
    )
    with pool.connection() as conn:
        before = conn.execute("SELECT count(*) AS n FROM dose_slots").fetchone()
    r = api.get(
        "/api/v1/dispensers/DSP-3/schedule/preview",
        params={"from": "2027-03-27T00:00:00Z", "to": "2027-03-30T00:00:00Z"},
    )
    assert r.status_code == 200, r.text
    rows = [
        (p["local_date"], p["due_at"], p["local_time"], p["scheduled_time"], p["dst_change_day"])
        for p in r.json()
    ]
    assert rows == [
        ("2027-03-27", "2027-03-27T01:30:00Z", "02:30", "02:30", False),
        # 02:30 does not exist on 2027-03-28: presented at 03:30 CEST, which is 01:30 UTC.
        ("2027-03-28", "2027-03-28T01:30:00Z", "03:30", "02:30", True),
        ("2027-03-29", "2027-03-29T00:30:00Z", "02:30", "02:30", False),
    ]
    with pool.connection() as conn:
        after = conn.execute("SELECT count(*) AS n FROM dose_slots").fetchone()
    assert before == after
    too_long = api.get(
        "/api/v1/dispensers/DSP-3/schedule/preview",
        params={"from": "2027-01-01T00:00:00Z", "to": "2027-03-05T00:00:00Z"},
    )
    assert too_long.status_code == 422


def test_time_critical_doses_raise_high_priority_alarms_and_weekdays_are_local(
    api: TestClient, clock: FakeClock, pool: ConnectionPool
) -> None:
    new_dispenser(api, "DSP-4")
    body = {
        **DAILY,
        "doses": [
            {"time": "08:00", "window_min": 30, "time_critical": True, "label": "levodopa"},
            {"time": "00:30", "window_min": 30, "weekdays": [1]},  # Monday night, local
        ],
    }
    assert api.put("/api/v1/dispensers/DSP-4/schedule", json=body).status_code == 200
    week = api.get(
        "/api/v1/dispensers/DSP-4/schedule/preview",
        params={"from": "2026-11-23T00:00:00Z", "to": "2026-11-30T00:00:00Z"},
    ).json()
    mondays = [p for p in week if p["local_time"] == "00:30"]
    # 00:30 on Monday 2026-11-30 in Stockholm is 23:30 on Sunday in UTC.
    assert [p["due_at"] for p in mondays] == ["2026-11-29T23:30:00Z"]
    clock.set(MORNING + timedelta(minutes=30))
    sweep_missed_doses(pool, clock)
    [alarm] = api.get("/api/v1/alarms").json()
    assert alarm["priority"] == "high"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"effective_from": "2026-11-01T00:00:00Z"}, "past"),
        ({"valid_until": "2026-10-01"}, "valid_until"),
        ({"doses": [{"time": "08:00", "window_min": 45, "weekdays": [8]}]}, "weekdays"),
        (
            {
                "doses": [
                    {"time": "08:00", "window_min": 45, "weekdays": [1, 2]},
                    {"time": "08:00", "window_min": 30, "weekdays": [2]},
                ]
            },
            "same time",
        ),
    ],
)
def test_bad_schedule_changes_are_refused(api: TestClient, change: dict, words: str) -> None:
    new_dispenser(api, "DSP-5")
    r = api.put("/api/v1/dispensers/DSP-5/schedule", json={**DAILY, **change})
    assert words in problems(r), r.text


def test_bad_absences_are_refused(api: TestClient) -> None:
    new_dispenser(api, "DSP-6")
    url = "/api/v1/dispensers/DSP-6/absences"
    backwards = {
        "starts_at": "2026-11-25T00:00:00Z",
        "ends_at": "2026-11-24T00:00:00Z",
        "reason": "x",
    }
    assert "ends_at" in problems(api.post(url, json=backwards))
    over = {"starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-11-02T00:00:00Z", "reason": "x"}
    assert api.post(url, json=over).status_code == 422
    assert (
        api.post(
            "/api/v1/dispensers/NOPE-1/absences", json={**over, "ends_at": "2027-01-01T00:00:00Z"}
        ).status_code
        == 404
    )


def test_the_same_days_events_in_any_order_end_in_the_same_states(
    api: TestClient, gateway: Gateway, publisher: Publish, clock: FakeClock
) -> None:
    """Two dispensers get one day's events, one in order and one reversed and duplicated."""
    day = [
        ("dose_presented", MORNING, MORNING),
        ("dose_taken", MORNING, None),
        ("dose_presented", EVENING, EVENING),
        ("dose_not_taken", EVENING, EVENING),
    ]
    for dispenser_id in ("DSP-IN", "DSP-OUT"):
        new_dispenser(api, dispenser_id)
        api.put(f"/api/v1/dispensers/{dispenser_id}/schedule", json=DAILY)
    clock.set(EVENING + timedelta(hours=1))  # the dispenser was offline; all arrive at once

    def payloads(dispenser_id: str) -> list[bytes]:
        return [
            event(
                dispenser_id,
                i,
                kind,
                at + timedelta(minutes=3),
                dose_due_at=due,
                event_id=f"{dispenser_id}-{i}",
            )
            for i, (kind, at, due) in enumerate(day)
        ]

    for p in payloads("DSP-IN"):
        publisher(topic("DSP-IN"), p)
    shuffled = payloads("DSP-OUT")[::-1]
    for p in shuffled + shuffled[:2]:
        publisher(topic("DSP-OUT"), p)
    span = ("2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z")

    def settled(dispenser_id: str) -> bool:
        r = api.get(f"/api/v1/dispensers/{dispenser_id}/events", params={"limit": 100})
        return len(r.json()) == len(day)

    wait_for(lambda: settled("DSP-IN") and settled("DSP-OUT"), what="both days stored")
    in_order = states(api, "DSP-IN", *span)
    assert in_order == states(api, "DSP-OUT", *span)
    assert list(in_order.values()) == ["taken_late", "missed"]
