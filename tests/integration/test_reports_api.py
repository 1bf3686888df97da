"""The report routes: who sees what, the audit of patient figures, CSV, and alarm, economics
and insight figures computed from real slots and alarms."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from alarms.jobs import sweep_missed_doses
from dashboards.app import create_app
from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from dosewatch.domain.alarms import Outcome
from dosewatch.usecases import alarm_actions
from gateway.writer import Inbound, write_batch
from tests.auth_helpers import bearer, team
from tests.helpers import add_dispenser

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm


@pytest.fixture
def world(pool: ConnectionPool, clock: FakeClock) -> Iterator[tuple[TestClient, dict[str, int]]]:
    east, west = team(pool, "Öst"), team(pool, "Väst")
    a = add_dispenser(pool, "DSP-EAST", clock.now())
    b = add_dispenser(pool, "DSP-WEST", clock.now())
    with pool.connection() as conn:
        conn.execute(
            "UPDATE patients SET team_id = %s, district = 'Ålidhem' WHERE id = %s", (east, a)
        )
        conn.execute("UPDATE patients SET team_id = %s WHERE id = %s", (west, b))
    # East takes the 08:00 dose on time; west (never heard from) misses it, and the alarm is
    # handled.
    with pool.connection() as conn:
        body = event("DSP-EAST", 1, "dose_taken", DUE + timedelta(minutes=3), dose_due_at=DUE)
        write_batch(
            conn,
            [Inbound("dosewatch/v1/dispensers/DSP-EAST/events", body, DUE + timedelta(minutes=3))],
        )
    clock.set(DUE + timedelta(minutes=45))
    [alarm_id] = sweep_missed_doses(pool, clock)
    with pool.connection() as conn, conn.transaction():
        alarm_actions.acknowledge(
            conn, alarm_id, clock.now() + timedelta(minutes=4), "nurse.eva", "console"
        )
        alarm_actions.resolve(
            conn,
            alarm_id,
            clock.now() + timedelta(minutes=30),
            "nurse.eva",
            "console",
            Outcome.REACHED_BY_PHONE,
            None,
        )
    clock.set(DUE + timedelta(hours=14))  # 22:00: both 20:00 windows closed too
    sweep_missed_doses(pool, clock)
    with TestClient(create_app(pool, clock)) as client:
        yield client, {"east": east, "west": west, "a": a, "b": b}


def get(client: TestClient, path: str, headers: dict[str, str], **params: object) -> object:
    return client.get(path, headers=headers, params=params)


def test_managers_see_every_team_nurses_their_own(
    world: tuple[TestClient, dict[str, int]], pool: ConnectionPool
) -> None:
    client, ids = world
    manager = bearer(pool, "manager")
    nurse = bearer(pool, "nurse", ids["east"])
    pharmacist = bearer(pool, "pharmacist", ids["east"])
    r = client.get("/api/v1/reports/municipality", headers=manager, params={"month": "2026-11"})
    assert r.status_code == 200
    teams = {t["name"]: t["figures"] for t in r.json()["teams"]}
    # East's dispenser has been silent since 08:03, so its 20:00 dose is unknown, not missed.
    assert (teams["Öst"]["taken"], teams["Öst"]["unknown"]) == (1, 1)
    assert (teams["Väst"]["taken"], teams["Väst"]["missed"]) == (0, 2)
    assert client.get("/api/v1/reports/municipality", headers=nurse).status_code == 403
    assert client.get(f"/api/v1/reports/teams/{ids['east']}", headers=pharmacist).status_code == 403
    assert client.get(f"/api/v1/reports/teams/{ids['east']}", headers=nurse).status_code == 200
    assert client.get(f"/api/v1/reports/teams/{ids['west']}", headers=nurse).status_code == 404
    assert client.get(f"/api/v1/reports/patients/{ids['b']}", headers=nurse).status_code == 404
    assert client.get("/api/v1/reports/teams/999999", headers=manager).status_code == 404
    # A nurse's alarm and insight figures are her team's; another team's is a 404.
    r = client.get("/api/v1/reports/alarms", headers=nurse, params={"month": "2026-11"})
    assert r.status_code == 200 and r.json()["alarms"] == 1  # east's 20:00 only
    assert (
        client.get(
            "/api/v1/reports/alarms", headers=nurse, params={"team_id": ids["west"]}
        ).status_code
        == 404
    )
    assert client.get("/api/v1/reports/economics", headers=nurse).status_code == 403
    with pool.connection() as conn:
        denied = conn.execute(
            "SELECT object_type, object_id FROM audit_log WHERE action = 'denied' ORDER BY id"
        ).fetchall()
    assert [(d["object_type"], d["object_id"]) for d in denied] == [
        ("team", str(ids["west"])),
        ("patient", str(ids["b"])),
        ("team", str(ids["west"])),
    ]


def test_every_opening_of_a_patients_figures_is_audited(
    world: tuple[TestClient, dict[str, int]], pool: ConnectionPool
) -> None:
    client, ids = world
    nurse = bearer(pool, "nurse", ids["east"])
    base = f"/api/v1/reports/patients/{ids['a']}"
    for path in (base, f"{base}/calendar", f"{base}.csv"):
        assert client.get(path, headers=nurse, params={"month": "2026-11"}).status_code == 200
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT actor_role, object_id, detail FROM audit_log"
            " WHERE action = 'open' AND object_type = 'patient' ORDER BY id"
        ).fetchall()
    assert [(r["actor_role"], r["object_id"], r["detail"]["report"]) for r in rows] == [
        ("nurse", str(ids["a"]), "patient"),
        ("nurse", str(ids["a"]), "calendar"),
        ("nurse", str(ids["a"]), "csv:daily"),
    ]
    cal = client.get(f"{base}/calendar", headers=nurse, params={"week": "2026-W48"}).json()
    first = cal["slots"][0]
    assert (first["state"], first["local_time"], first["counts"]) == ("taken", "08:00", True)
    assert first["taken_received_at"].startswith("2026-11-23T07:03")


def test_csv_is_utf8_with_bom_semicolons_and_decimal_comma(
    world: tuple[TestClient, dict[str, int]], pool: ConnectionPool
) -> None:
    client, _ = world
    r = client.get(
        "/api/v1/reports/municipality.csv",
        headers=bearer(pool, "manager"),
        params={"month": "2026-11", "table": "teams"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    east = next(row for row in rows if row["name"] == "Öst")
    assert (east["taken"], east["taking_adherence_pct"]) == ("1", "50,0")
    point = client.get(
        "/api/v1/reports/municipality.csv",
        headers=bearer(pool, "manager"),
        params={"month": "2026-11", "decimal": "point"},
    )
    assert "50.0" in point.content.decode("utf-8-sig")


def test_alarm_economics_and_insight_figures(
    world: tuple[TestClient, dict[str, int]], pool: ConnectionPool, clock: FakeClock
) -> None:
    client, ids = world
    clock.advance(timedelta(hours=1))
    manager = bearer(pool, "manager")
    r = client.get("/api/v1/reports/alarms", headers=manager, params={"month": "2026-11"})
    body = r.json()
    # Both patients' 23 Nov is decided (every window closed): two monitored patient-days.
    assert (body["alarms"], body["patient_days"], body["alarms_per_100_patient_days"]) == (
        3,
        2,
        150.0,
    )
    assert body["time_to_acknowledge"] == {"count": 1, "median_s": 240.0, "p90_s": 240.0}
    assert body["time_to_resolve"]["median_s"] == 1800.0
    assert body["outcomes"] == [{"outcome": "reached_by_phone", "count": 1}]
    # The sweep opened the 20:00 alarms at 22:00 local: the night shift.
    assert {g["key"]: g["alarms"] for g in body["by_shift"]} == {"day": 1, "night": 2}
    # The 08:00 alarm was acknowledged in 4 min; the two 20:00 ones are an hour old, unacknowledged.
    assert body["not_acknowledged_within_15_min"] == 2
    e = client.get(
        "/api/v1/reports/economics",
        headers=manager,
        params={"month": "2026-11", "team_id": ids["east"]},
    ).json()
    assert e["doses_dispensed"] == 1 and e["visits_avoided"] == 0.6
    i = client.get("/api/v1/reports/insights", headers=manager, params={"as_of": "2026-11-23"})
    assert i.status_code == 200 and i.json()["as_of"] == "2026-11-23"
    for path, params in (
        ("/api/v1/reports/municipality", {"month": "2026-13"}),
        ("/api/v1/reports/municipality", {"from": "2026-01-01"}),
        ("/api/v1/reports/municipality", {"threshold": 101}),
        ("/api/v1/reports/insights", {"as_of": "2027-01-01"}),
    ):
        assert client.get(path, headers=manager, params=params).status_code == 422


def test_the_openapi_lists_every_report_route(world: tuple[TestClient, dict[str, int]]) -> None:
    client, _ = world
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "municipality",
        "municipality.csv",
        "teams/{team_id}",
        "teams/{team_id}.csv",
        "teams/{team_id}/districts/{district}",
        "patients/{patient_id}",
        "patients/{patient_id}/calendar",
        "patients/{patient_id}.csv",
        "alarms",
        "alarms.csv",
        "economics",
        "insights",
        "insights.csv",
    ):
        assert f"/api/v1/reports/{p}" in paths
