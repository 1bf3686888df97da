"""Broker credentials from the admin pages: generated, written hashed, shown once, audited."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dosewatch.broker_credentials import check_password
from dosewatch.clock import FakeClock
from tests.auth_helpers import as_admin, bearer
from tests.integration.test_api import make_dispenser


def test_an_admin_creates_and_replaces_a_dispensers_broker_password(
    pool: ConnectionPool, clock: FakeClock, tmp_path: Path
) -> None:
    passwords = tmp_path / "passwords"
    app = create_app(pool, clock, mqtt_password_file=str(passwords))
    with as_admin(TestClient(app), pool) as api:
        make_dispenser(api, "DSP-000123")
        url = "/api/v1/dispensers/DSP-000123/broker-credentials"
        r = api.post(url)
        assert r.status_code == 201
        first = r.json()["password"]
        assert r.json()["username"] == "DSP-000123" and len(first) >= 16
        line = passwords.read_text().strip()
        assert line.startswith("DSP-000123:$7$") and first not in line  # stored hashed
        assert check_password(first, line.split(":", 1)[1])
        # Not again by accident; on purpose, a new one that replaces it.
        assert api.post(url).status_code == 409
        second = api.post(url, json={"replace": True}).json()["password"]
        assert second != first
        assert check_password(second, passwords.read_text().strip().split(":", 1)[1])
        assert api.post("/api/v1/dispensers/NOPE-1/broker-credentials").status_code == 404
        audit = api.get("/api/v1/audit", params={"action": "update"}).json()
    assert any(e["object_id"] == "DSP-000123" for e in audit)


def test_only_admins_and_only_with_a_password_file(
    pool: ConnectionPool, clock: FakeClock, tmp_path: Path
) -> None:
    with as_admin(TestClient(create_app(pool, clock)), pool) as api:
        make_dispenser(api, "DSP-000123")
        r = api.post("/api/v1/dispensers/DSP-000123/broker-credentials")
        assert r.status_code == 503 and "DOSEWATCH_MQTT_PASSWORD_FILE" in r.json()["detail"]
    app = create_app(pool, clock, mqtt_password_file=str(tmp_path / "p"))
    with TestClient(app) as client:
        headers = bearer(pool, role="manager")
        r = client.post("/api/v1/dispensers/DSP-000123/broker-credentials", headers=headers)
    assert r.status_code in (403, 404)
    assert not (tmp_path / "p").exists()
