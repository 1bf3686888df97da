"""The audit log: append-only in the database; every opening of a patient record, alarm action,
change and sign-in recorded with who, what, when (the app's clock) and from where; readable and
exportable by managers and admins."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dosewatch.clock import FakeClock
from tests.auth_helpers import PASSWORD, bearer, sign_in, team, user
from tests.conftest import T0
from tests.helpers import add_dispenser

UA = {"User-Agent": "night-console/1.0"}


def rows(pool: ConnectionPool, **where: str) -> list[dict[str, Any]]:
    sql = "SELECT * FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(f"{k} = %({k})s" for k in where)
    with pool.connection() as conn:
        return conn.execute(sql + " ORDER BY id", where).fetchall()  # type: ignore[return-value]


def what(pool: ConnectionPool, **where: str) -> list[tuple[str, str | None, str | None]]:
    return [(r["action"], r["object_type"], r["object_id"]) for r in rows(pool, **where)]


@pytest.fixture
def admin(pool: ConnectionPool, clock: FakeClock) -> Iterator[TestClient]:
    user(pool, "admin.ada", "admin")
    with TestClient(create_app(pool, clock), base_url="https://testserver", headers=UA) as c:
        c.headers["X-CSRF-Token"] = sign_in(c, "admin.ada")
        yield c


def test_the_log_cannot_be_updated_or_deleted(pool: ConnectionPool, admin: TestClient) -> None:
    assert rows(pool)  # the sign-in
    with pool.connection() as conn:
        for sql in ("UPDATE audit_log SET actor_name = 'nobody'", "DELETE FROM audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(sql)
            conn.rollback()
        # ... and the application's role (the owner) holds no UPDATE or DELETE right on it.
        acl = conn.execute(
            "SELECT a.privilege_type FROM pg_class c, aclexplode(c.relacl) a"
            " WHERE c.relname = 'audit_log' AND a.grantee = c.relowner"
        ).fetchall()
    granted = {r["privilege_type"] for r in acl}  # type: ignore[call-overload]
    assert "INSERT" in granted and "SELECT" in granted
    assert not granted & {"UPDATE", "DELETE"}


def test_sign_ins_are_recorded_with_where_from(
    pool: ConnectionPool, clock: FakeClock, admin: TestClient
) -> None:
    admin.post("/auth/login", json={"username": "admin.ada", "password": "nope-nope"})
    clock.advance(timedelta(minutes=1))
    admin.post("/auth/logout")
    signed_in, failed, out = rows(pool)
    assert (signed_in["action"], signed_in["actor_name"], signed_in["actor_kind"]) == (
        "sign_in",
        "admin.ada",
        "user",
    )
    assert signed_in["at"] == T0 and out["at"] == T0 + timedelta(minutes=1)  # the app's clock
    assert (signed_in["client_ip"], signed_in["user_agent"]) == ("testclient", UA["User-Agent"])
    assert (failed["action"], failed["actor_kind"], failed["actor_name"]) == (
        "sign_in_failed",
        "anonymous",
        "admin.ada",
    )
    assert out["action"] == "sign_out"


def test_opening_records_and_alarm_actions_are_recorded(
    pool: ConnectionPool, clock: FakeClock, admin: TestClient
) -> None:
    patient_id = add_dispenser(pool, "DSP-1", clock.now())
    with pool.connection() as conn:
        alarm = conn.execute(
            "INSERT INTO alarms (kind, dispenser_id, patient_id, opened_at)"
            " VALUES ('help_button', 'DSP-1', %s, %s) RETURNING id",
            (patient_id, clock.now()),
        ).fetchone()
    assert alarm is not None
    alarm_id = alarm["id"]  # type: ignore[call-overload]
    for path in (
        f"/api/v1/patients/{patient_id}",
        f"/api/v1/patients/{patient_id}/contact",
        "/api/v1/dispensers/DSP-1",
        f"/api/v1/alarms/{alarm_id}",
    ):
        assert admin.get(path).status_code == 200, path
    assert admin.post(f"/api/v1/alarms/{alarm_id}/acknowledge").status_code == 200
    r = admin.post(f"/api/v1/alarms/{alarm_id}/resolve", json={"outcome": "home_visit"})
    assert r.status_code == 200
    assert what(pool, actor_name="admin.ada")[1:] == [
        ("open", "patient", str(patient_id)),
        ("open", "patient_contact", str(patient_id)),
        ("open", "dispenser", "DSP-1"),
        ("open", "alarm", str(alarm_id)),
        ("acknowledge", "alarm", str(alarm_id)),
        ("resolve", "alarm", str(alarm_id)),
    ]
    assert rows(pool, action="resolve")[0]["detail"]["outcome"] == "home_visit"


def test_an_acknowledgement_by_sms_or_phone_is_recorded_too(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    patient_id = add_dispenser(pool, "DSP-1", clock.now())
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO alarms (id, kind, dispenser_id, patient_id, opened_at)"
            " VALUES (7, 'help_button', 'DSP-1', %s, %s)",
            (patient_id, clock.now()),
        )
        conn.execute(
            "INSERT INTO alarm_history (alarm_id, at, action, actor, via) VALUES"
            " (7, %s, 'opened', 'system', 'automatic'), (7, %s, 'acknowledged', 'Anna', 'sms')",
            (clock.now(), clock.now()),
        )
    [row] = rows(pool)
    assert (row["actor_kind"], row["actor_name"], row["action"], row["object_id"]) == (
        "phone",
        "Anna",
        "acknowledge",
        "7",
    )
    assert row["detail"] == {"via": "sms"} and row["at"] == clock.now()


def test_every_change_is_recorded(
    pool: ConnectionPool, clock: FakeClock, admin: TestClient
) -> None:
    v1 = "/api/v1"
    patient = admin.post(f"{v1}/patients", json={"name": "Astrid", "phone": "+4670123"}).json()
    admin.post(f"{v1}/dispensers", json={"id": "DSP-9", "patient_id": patient["id"]})
    sched = {
        "timezone": "UTC",
        "valid_from": "2026-11-20",
        "doses": [{"time": "08:00", "window_min": 45}],
    }
    assert admin.put(f"{v1}/dispensers/DSP-9/schedule", json=sched).status_code == 200
    trip = {"starts_at": "2026-11-25T00:00:00Z", "ends_at": "2026-11-27T00:00:00Z", "reason": "x"}
    absence = admin.post(f"{v1}/dispensers/DSP-9/absences", json=trip).json()
    admin.post(f"{v1}/absences/{absence['id']}/end")
    t = admin.post(f"{v1}/teams", json={"name": "Norr"}).json()["id"]
    nurse = {"team_id": t, "name": "Anna", "phone": "+46701111111"}
    n = admin.post(f"{v1}/nurses", json=nurse).json()["id"]
    admin.patch(f"{v1}/nurses/{n}", json={"language": "en"})
    shift = {
        "nurse_id": n,
        "starts_at": "2026-11-23T21:00:00Z",
        "ends_at": "2026-11-24T07:00:00Z",
        "role": "primary",
    }
    s = admin.post(f"{v1}/teams/{t}/shifts", json=shift).json()["id"]
    assert admin.delete(f"{v1}/shifts/{s}").status_code == 204
    policy = {"steps": [{"target": "on_duty", "channels": ["sms"], "wait_min": 5}]}
    assert admin.put(f"{v1}/teams/{t}/escalation-policy", json=policy).status_code == 200
    admin.put(f"{v1}/patients/{patient['id']}/team", json={"team_id": t})
    contact = {"contact_phone": "+46702222222", "sms_consent": True}
    admin.put(f"{v1}/patients/{patient['id']}/contact", json=contact)
    new = {"username": "n.b", "name": "B", "role": "manager", "password": "long enough"}
    u = admin.post(f"{v1}/users", json=new).json()["id"]
    admin.patch(f"{v1}/users/{u}", json={"password": "another long one"})
    logged = [(a, o) for a, o, _ in what(pool, actor_name="admin.ada")]
    assert logged == [
        ("sign_in", "user"),
        ("create", "patient"),
        ("create", "dispenser"),
        ("create", "schedule"),
        ("create", "absence"),
        ("update", "absence"),
        ("create", "team"),
        ("create", "nurse"),
        ("update", "nurse"),
        ("create", "shift"),
        ("delete", "shift"),
        ("create", "escalation_policy"),
        ("update", "patient"),
        ("update", "patient_contact"),
        ("create", "user"),
        ("update", "user"),
    ]
    [changed] = rows(pool, action="update", object_type="user")
    assert changed["detail"] == {"password_changed": True}  # never the password itself


def test_a_refused_change_leaves_no_audit_row(pool: ConnectionPool, admin: TestClient) -> None:
    before = len(rows(pool))
    r = admin.post("/api/v1/nurses", json={"team_id": 999, "name": "X", "phone": "+46701111111"})
    assert r.status_code == 422
    assert len(rows(pool)) == before


@pytest.fixture
def manager(pool: ConnectionPool, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(pool, clock)) as client:
        client.headers.update(bearer(pool, "manager"))
        yield client


def test_managers_search_the_log(
    pool: ConnectionPool, clock: FakeClock, manager: TestClient
) -> None:
    user(pool, "nurse.eva", "nurse", team(pool, "Norr"))
    with TestClient(manager.app, base_url="https://testserver") as eva:
        for minute in range(3):
            clock.set(T0 + timedelta(minutes=minute))
            eva.post("/auth/login", json={"username": "nurse.eva", "password": PASSWORD})
    clock.set(T0 + timedelta(minutes=10))
    eva_rows = manager.get("/api/v1/audit", params={"actor": "nurse.eva"}).json()
    assert [r["action"] for r in eva_rows] == ["sign_in"] * 3  # newest first
    assert eva_rows[0]["at"] == "2026-11-23T06:52:00Z"
    window = {"from": "2026-11-23T06:51:00Z", "to": "2026-11-23T06:52:00Z"}
    assert [r["at"] for r in manager.get("/api/v1/audit", params=window).json()] == [
        "2026-11-23T06:51:00Z"
    ]
    assert manager.get("/api/v1/audit", params={"action": "denied"}).json() == []
    assert manager.get("/api/v1/audit", params={"from": "2026-11-23T06:51:00"}).status_code == 422
    page = manager.get("/api/v1/audit", params={"limit": 1, "before_id": eva_rows[0]["id"]})
    assert [r["id"] for r in page.json()] == [eva_rows[1]["id"]]


def test_the_csv_export(pool: ConnectionPool, clock: FakeClock, manager: TestClient) -> None:
    user(pool, "nurse.eva", "nurse", team(pool, "Norr"))
    with TestClient(manager.app, base_url="https://testserver") as eva:
        eva.headers["User-Agent"] = "=HYPERLINK(evil)"
        for _ in range(2):
            eva.post("/auth/login", json={"username": "nurse.eva", "password": PASSWORD})
    r = manager.get("/api/v1/audit.csv", params={"actor": "nurse.eva"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["action"] for row in table] == ["sign_in", "sign_in"]  # oldest first
    assert table[0]["at"] == "2026-11-23T06:50:00+00:00" and table[0]["client_ip"] == "testclient"
    assert table[0]["user_agent"] == "'=HYPERLINK(evil)"  # not a formula in a spreadsheet
