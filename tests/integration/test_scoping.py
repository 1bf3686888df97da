"""Team scoping: a nurse (or pharmacist) of team A reads team A's records and nothing of team
B's. Every read endpoint with an id in its path is tried, found by walking the app's routes (a
route added later is tried too), with team A's ids (answered) and team B's (404, exactly like
an id that does not exist, and audited as ``denied``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dosewatch.clock import FakeClock
from tests.auth_helpers import all_routes, bearer, fill, params, sign_in, team, user
from tests.helpers import add_dispenser

# Admin-only records that belong to no team (a nurse is refused them with 403, tested below).
ADMIN_ONLY = {"/api/v1/webhooks/{webhook_id}/deliveries", "/api/v1/teams/{team_id}/scaip"}
READS = [
    p for m, p in all_routes()
    if m == "GET" and p.startswith(("/api/v1/", "/fhir/")) and params(p) and p not in ADMIN_ONLY
]  # fmt: skip
KNOWN_PARAMS = {
    "patient_id", "dispenser_id", "alarm_id", "team_id", "nurse_id", "absence_id", "shift_id",
    "district",
}  # fmt: skip


def _one(conn: Any, sql: str, *args: Any) -> Any:
    row = conn.execute(sql, args).fetchone()
    return row["id"]


def _team_world(pool: ConnectionPool, name: str, dispenser: str, now: Any) -> dict[str, Any]:
    """A team with a patient, dispenser (scheduled), alarm, absence, nurse and shift."""
    team_id = team(pool, name)
    patient_id = add_dispenser(pool, dispenser, now)
    with pool.connection() as conn, conn.transaction():
        conn.execute("UPDATE patients SET team_id = %s, district = %s WHERE id = %s",
                     (team_id, f"{name} centrum", patient_id))  # fmt: skip
        ids = {
            "district": f"{name} centrum",
            "team_id": team_id,
            "patient_id": patient_id,
            "dispenser_id": dispenser,
            "alarm_id": _one(
                conn,
                "INSERT INTO alarms (kind, dispenser_id, patient_id, priority, opened_at)"
                " VALUES ('help_button', %s, %s, 'high', %s) RETURNING id",
                dispenser, patient_id, now,
            ),
            "absence_id": _one(
                conn,
                "INSERT INTO absences (dispenser_id, starts_at, ends_at, reason, created_by,"
                " created_at) VALUES (%s, %s, %s, 'trip', 'x', %s) RETURNING id",
                dispenser, now + timedelta(days=3), now + timedelta(days=5), now,
            ),
            "nurse_id": _one(
                conn,
                "INSERT INTO nurses (team_id, name, phone, created_at)"
                " VALUES (%s, 'N', '+46701234567', %s) RETURNING id",
                team_id, now,
            ),
        }  # fmt: skip
        ids["shift_id"] = _one(
            conn,
            "INSERT INTO shifts (team_id, nurse_id, starts_at, ends_at, role)"
            " VALUES (%s, %s, %s, %s, 'primary') RETURNING id",
            team_id, ids["nurse_id"], now, now + timedelta(hours=8),
        )  # fmt: skip
    return ids


@pytest.fixture
def world(pool: ConnectionPool, clock: FakeClock) -> dict[str, dict[str, Any]]:
    return {
        "A": _team_world(pool, "Norr", "DSP-A", clock.now()),
        "B": _team_world(pool, "Söder", "DSP-B", clock.now()),
    }


@pytest.fixture
def nurse_a(
    pool: ConnectionPool, clock: FakeClock, world: dict[str, dict[str, Any]]
) -> Iterator[TestClient]:
    user(pool, "nurse.a", "nurse", world["A"]["team_id"])
    with TestClient(create_app(pool, clock), base_url="https://testserver") as browser:
        browser.headers["X-CSRF-Token"] = sign_in(browser, "nurse.a")
        yield browser


def denied(pool: ConnectionPool) -> list[tuple[str, str, str]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT actor_name, object_type, object_id FROM audit_log WHERE action = 'denied'"
            " ORDER BY id"
        ).fetchall()
    return [(r["actor_name"], r["object_type"], r["object_id"]) for r in rows]  # type: ignore[call-overload]


def test_every_read_route_is_tried() -> None:
    assert "/api/v1/patients/{patient_id}" in READS and "/api/v1/alarms/{alarm_id}" in READS
    unknown = {p for path in READS for p in params(path)} - KNOWN_PARAMS
    assert not unknown, f"teach test_scoping which team owns a {unknown}"
    assert "/fhir/R4/Patient/{patient_id}" in READS


@pytest.mark.parametrize("path", sorted(ADMIN_ONLY))
def test_admin_only_records_are_refused_to_a_nurse(path: str, nurse_a: TestClient) -> None:
    assert nurse_a.get(fill(path, {})).status_code == 403


@pytest.mark.parametrize("path", READS)
def test_a_nurse_reads_her_team_and_nothing_of_another(
    path: str, nurse_a: TestClient, world: dict[str, dict[str, Any]], pool: ConnectionPool
) -> None:
    own = nurse_a.get(fill(path, world["A"]))
    assert own.status_code == 200, own.text
    other = nurse_a.get(fill(path, world["B"]))
    assert other.status_code == 404, other.text
    missing = {k: "DSP-NONE" if k == "dispenser_id" else 999999 for k in KNOWN_PARAMS}
    nowhere = nurse_a.get(fill(path, missing))
    assert nowhere.status_code == 404
    # Not a word more than for an id that does not exist (apart from the id itself).
    assert other.json()["detail"].split()[0] == nowhere.json()["detail"].split()[0]
    audited = denied(pool)
    assert audited, f"{path}: refused, but not audited; check it with dashboards.access.Access"
    [(actor, _kind, object_id)] = audited
    assert actor == "nurse.a"
    assert object_id in {str(world["B"][p]) for p in params(path)}


@pytest.mark.parametrize("path", READS)
def test_a_pharmacist_token_is_refused_or_scoped_too(
    path: str, world: dict[str, dict[str, Any]], pool: ConnectionPool, clock: FakeClock
) -> None:
    with TestClient(create_app(pool, clock)) as client:
        client.headers.update(bearer(pool, "pharmacist", world["A"]["team_id"]))
        own = client.get(fill(path, world["A"]))
        if own.status_code == 403:  # not for this role, whatever the team
            assert client.get(fill(path, world["B"])).status_code == 403
            assert denied(pool) == []
            return
        assert own.status_code == 200, own.text
        assert client.get(fill(path, world["B"])).status_code == 404
    audited = denied(pool)
    assert audited, f"{path}: refused, but not audited; check it with dashboards.access.Access"
    [(actor, _, _)] = audited
    assert actor.startswith("token:")


def test_lists_show_only_the_team(
    nurse_a: TestClient, world: dict[str, dict[str, Any]], pool: ConnectionPool
) -> None:
    a, b = world["A"], world["B"]
    assert [x["id"] for x in nurse_a.get("/api/v1/alarms").json()] == [a["alarm_id"]]
    assert [x["id"] for x in nurse_a.get("/api/v1/teams").json()] == [a["team_id"]]
    assert [x["id"] for x in nurse_a.get("/api/v1/nurses").json()] == [a["nurse_id"]]
    assert nurse_a.get("/api/v1/nurses", params={"team_id": b["team_id"]}).status_code == 404
    assert denied(pool) == [("nurse.a", "team", str(b["team_id"]))]
    with TestClient(nurse_a.app) as client:
        client.headers.update(bearer(pool, "manager"))
        ids = {x["id"] for x in client.get("/api/v1/alarms").json()}
        assert ids == {a["alarm_id"], b["alarm_id"]}  # managers see every team


def test_a_nurse_cannot_act_on_another_teams_alarm(
    nurse_a: TestClient, world: dict[str, dict[str, Any]], pool: ConnectionPool
) -> None:
    b_alarm, a_alarm = world["B"]["alarm_id"], world["A"]["alarm_id"]
    assert nurse_a.post(f"/api/v1/alarms/{b_alarm}/acknowledge").status_code == 404
    body = {"outcome": "false_alarm"}
    assert nurse_a.post(f"/api/v1/alarms/{b_alarm}/resolve", json=body).status_code == 404
    assert denied(pool) == [("nurse.a", "alarm", str(b_alarm))] * 2
    with pool.connection() as conn:
        row = conn.execute("SELECT state FROM alarms WHERE id = %s", (b_alarm,)).fetchone()
    assert row is not None and row["state"] == "open"  # type: ignore[call-overload]
    ack = nurse_a.post(f"/api/v1/alarms/{a_alarm}/acknowledge", json={"by": "someone else"})
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "Nurse.A"  # who signed in


def test_a_patient_without_a_team_is_seen_only_by_managers_and_admins(
    pool: ConnectionPool, clock: FakeClock, nurse_a: TestClient
) -> None:
    patient_id = add_dispenser(pool, "DSP-LOOSE", clock.now())
    assert nurse_a.get(f"/api/v1/patients/{patient_id}").status_code == 404
    assert nurse_a.get("/api/v1/dispensers/DSP-LOOSE").status_code == 404
    with TestClient(nurse_a.app) as client:
        client.headers.update(bearer(pool, "manager"))
        assert client.get(f"/api/v1/patients/{patient_id}").status_code == 200
