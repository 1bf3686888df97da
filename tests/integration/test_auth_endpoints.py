"""Every endpoint, found by walking the app's routes (so a route added later is tried too):

- every ``/api/v1`` route (and ``/auth/me``, ``/auth/logout``) answers 401 without a caller;
- every state-changing route answers 403 to a signed-in browser session that sends no CSRF
  token, or a wrong one, and changes nothing;
- the open ones stay open: ``/api/v1/health``, ``/healthz``, ``/metrics``; Twilio's webhooks
  are checked by their signature (403 unsigned), never by a session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dosewatch.clock import FakeClock
from tests.auth_helpers import UNSAFE, all_routes, fill, sign_in, user

OPEN = {("GET", "/api/v1/health"), ("GET", "/healthz"), ("GET", "/metrics")}
ROUTES = all_routes(create_app(None, None, twilio_auth_token="x" * 32, public_url="https://e"))  # type: ignore[arg-type]
API = [
    (m, p)
    for m, p in ROUTES
    if (p.startswith("/api/v1/") or p in ("/auth/me", "/auth/logout")) and (m, p) not in OPEN
]
STATE_CHANGING = [(m, p) for m, p in ROUTES if m in UNSAFE and p != "/auth/login"]
IDS = {"dispenser_id": "DSP-1", "patient_id": 1, "alarm_id": 1, "team_id": 1}


def test_the_walk_finds_the_routes() -> None:
    assert ("GET", "/api/v1/alarms") in API and ("POST", "/api/v1/patients") in API
    assert ("PATCH", "/api/v1/users/{user_id}") in STATE_CHANGING
    assert len(API) > 40


@pytest.fixture
def app(pool: ConnectionPool, clock: FakeClock) -> Iterator[Any]:
    yield create_app(
        pool, clock, twilio_auth_token="0123456789abcdef" * 2, public_url="https://e.example"
    )


@pytest.mark.parametrize(("method", "path"), API)
def test_every_api_route_needs_a_caller(app: Any, method: str, path: str) -> None:
    with TestClient(app) as client:
        r = client.request(method, fill(path, IDS), json={})
        assert r.status_code == 401, r.text
        assert "detail" in r.json()
        # A cookie that names no session is no caller either.
        client.cookies.set("dw_session", "forged")
        assert client.request(method, fill(path, IDS), json={}).status_code == 401


def _counts(pool: ConnectionPool) -> dict[str, int]:
    tables = ("patients", "dispensers", "schedules", "absences", "teams", "nurses", "shifts")
    with pool.connection() as conn:
        return {
            t: conn.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"]  # type: ignore[index, call-overload]
            for t in tables
        }


@pytest.mark.parametrize(("method", "path"), STATE_CHANGING)
def test_every_state_change_by_a_session_needs_the_csrf_token(
    app: Any, pool: ConnectionPool, method: str, path: str
) -> None:
    user(pool, "admin.ada", "admin")
    with TestClient(app, base_url="https://testserver") as browser:
        csrf = sign_in(browser, "admin.ada")
        before = _counts(pool)
        for headers in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": csrf + "x"}):
            r = browser.request(method, fill(path, IDS), json={}, headers=headers)
            if path.startswith("/twilio/"):
                assert r.status_code == 403  # unsigned: the signature check refuses it
            else:
                assert r.status_code == 403 and "CSRF" in r.json()["detail"], r.text
        assert _counts(pool) == before
        # The same session with the token gets past the check (to the route's own answer).
        if not path.startswith("/twilio/"):
            r = browser.request(method, fill(path, IDS), json={}, headers={"X-CSRF-Token": csrf})
            assert r.status_code != 403 or "CSRF" not in r.text


def test_the_open_routes_stay_open(app: Any) -> None:
    with TestClient(app) as client:
        for _method, path in OPEN:
            assert client.get(path).status_code in (200, 503), path
