"""Sign-in, sessions, CSRF, throttling, API tokens and roles, through the app on the real
database. The app's clock is a FakeClock: expiry and throttling windows are moved, not waited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dashboards.auth import cookie_secure_setting
from dosewatch.clock import FakeClock
from dosewatch.config import ConfigError
from tests.auth_helpers import PASSWORD, bearer, sign_in, team, user
from tests.errors import problems

HTTPS = "https://testserver"


@pytest.fixture
def app(pool: ConnectionPool, clock: FakeClock) -> Any:
    return create_app(pool, clock)


@pytest.fixture
def browser(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url=HTTPS) as client:
        yield client


@pytest.fixture
def nurse(pool: ConnectionPool) -> dict[str, Any]:
    return user(pool, "nurse.eva", "nurse", team(pool, "Norr"), language="sv")


def set_cookies(response: Any) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def test_sign_in_sets_the_cookies_and_me_answers_the_same(
    browser: TestClient, nurse: dict[str, Any]
) -> None:
    r = browser.post("/auth/login", json={"username": "Nurse.Eva", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == {
        "username": "nurse.eva",
        "name": "Nurse.Eva",
        "role": "nurse",
        "team_id": nurse["team_id"],
        "language": "sv",
        "csrf_token": body["csrf_token"],
    }
    cookies = set_cookies(r)
    session, csrf = cookies["dw_session"], cookies["dw_csrf"]
    for flag in ("HttpOnly", "Secure", "SameSite=Lax", "Max-Age=43200", "Path=/"):
        assert flag in session
    assert "HttpOnly" not in csrf and "SameSite=Strict" in csrf and "Secure" in csrf
    assert f"dw_csrf={body['csrf_token']};" in csrf
    assert browser.get("/auth/me").json() == body


def test_the_session_id_is_stored_only_as_a_hash(
    browser: TestClient, nurse: dict[str, Any], pool: ConnectionPool
) -> None:
    sign_in(browser, "nurse.eva")
    session_id = browser.cookies["dw_session"]
    with pool.connection() as conn:
        [row] = conn.execute("SELECT id_hash FROM sessions").fetchall()
        password_hash = conn.execute("SELECT password_hash FROM users").fetchone()
    assert row["id_hash"] != session_id and len(row["id_hash"]) == 64  # type: ignore[call-overload]
    assert str(password_hash["password_hash"]).startswith("$argon2id$")  # type: ignore[index, call-overload]


@pytest.mark.parametrize(
    ("base_url", "setting", "secure"),
    [
        ("http://localhost:8000", "auto", False),
        ("http://127.0.0.1:8000", "auto", False),
        ("http://dosewatch.example.se", "auto", True),
        ("https://localhost", "auto", True),
        ("http://localhost", "true", True),
        ("https://dosewatch.example.se", "false", False),
    ],
)
def test_cookie_secure_is_auto_unless_configured(
    pool: ConnectionPool,
    clock: FakeClock,
    nurse: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    base_url: str,
    setting: str,
    secure: bool,
) -> None:
    monkeypatch.setenv("DOSEWATCH_COOKIE_SECURE", setting)
    with TestClient(create_app(pool, clock), base_url=base_url) as client:
        r = client.post("/auth/login", json={"username": "nurse.eva", "password": PASSWORD})
    assert all(("Secure" in c) == secure for c in set_cookies(r).values())


def test_a_bad_cookie_secure_setting_is_one_clear_line() -> None:
    with pytest.raises(ConfigError, match="DOSEWATCH_COOKIE_SECURE"):
        cookie_secure_setting("sometimes")


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "nurse.eva", "password": "wrong password"},
        {"username": "nobody", "password": PASSWORD},
        {"username": "inactive", "password": PASSWORD},
    ],
)
def test_wrong_credentials_get_one_generic_401(
    browser: TestClient, nurse: dict[str, Any], pool: ConnectionPool, credentials: dict[str, str]
) -> None:
    user(pool, "inactive", "admin", active=False)
    r = browser.post("/auth/login", json=credentials)
    assert r.status_code == 401 and r.json() == {"detail": "wrong username or password"}
    assert "set-cookie" not in r.headers
    assert browser.get("/auth/me").status_code == 401


def test_five_failures_for_a_username_throttle_it_for_15_minutes(
    browser: TestClient, nurse: dict[str, Any], clock: FakeClock
) -> None:
    wrong = {"username": "nurse.eva", "password": "not it at all"}
    for _ in range(4):
        assert browser.post("/auth/login", json=wrong).status_code == 401
        clock.advance(timedelta(minutes=1))
    assert browser.post("/auth/login", json=wrong).status_code == 401  # the 5th, at +4 min
    right = {"username": "nurse.eva", "password": PASSWORD}
    r = browser.post("/auth/login", json=right)
    assert r.status_code == 429  # even the right password: it is not checked now
    assert int(r.headers["Retry-After"]) == 11 * 60  # the 1st failure leaves the window at +15
    clock.advance(timedelta(minutes=11))
    assert browser.post("/auth/login", json=right).status_code == 200


def test_five_failures_from_one_address_throttle_every_username(
    browser: TestClient, nurse: dict[str, Any], clock: FakeClock
) -> None:
    for i in range(5):
        r = browser.post("/auth/login", json={"username": f"guess{i}", "password": "x"})
        assert r.status_code == 401
    r = browser.post("/auth/login", json={"username": "nurse.eva", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) == 15 * 60
    clock.advance(timedelta(minutes=15))
    assert sign_in(browser, "nurse.eva")


def test_a_success_clears_the_count(
    browser: TestClient, nurse: dict[str, Any], clock: FakeClock
) -> None:
    wrong = {"username": "nurse.eva", "password": "not it at all"}
    for _ in range(4):
        browser.post("/auth/login", json=wrong)
    sign_in(browser, "nurse.eva")
    for _ in range(4):
        assert browser.post("/auth/login", json=wrong).status_code == 401
    assert sign_in(browser, "nurse.eva")


def test_the_session_slides_12_hours_from_the_last_request(
    browser: TestClient, nurse: dict[str, Any], clock: FakeClock
) -> None:
    sign_in(browser, "nurse.eva")
    for _ in range(3):  # 33 hours of use, never 12 idle
        clock.advance(timedelta(hours=11))
        r = browser.get("/api/v1/alarms")
        assert r.status_code == 200
        assert "Max-Age=43200" in set_cookies(r)["dw_session"]  # the cookie slides too
    clock.advance(timedelta(hours=12, seconds=1))
    assert browser.get("/api/v1/alarms").status_code == 401
    assert browser.get("/auth/me").status_code == 401


def test_state_changes_with_the_cookie_need_the_csrf_header(
    browser: TestClient, nurse: dict[str, Any], pool: ConnectionPool
) -> None:
    user(pool, "admin.ada", "admin")
    csrf = sign_in(browser, "admin.ada")
    body = {"name": "Astrid", "phone": "+46 70 123 45 67"}
    assert browser.post("/api/v1/patients", json=body).status_code == 403
    bad = {"X-CSRF-Token": csrf[:-2] + "xx"}
    assert browser.post("/api/v1/patients", json=body, headers=bad).status_code == 403
    r = browser.post("/api/v1/patients", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    # Another session's token does not do.
    with TestClient(browser.app, base_url=HTTPS) as other:
        sign_in(other, "nurse.eva")
        assert other.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 403


def test_sign_out_ends_the_session(browser: TestClient, nurse: dict[str, Any]) -> None:
    csrf = sign_in(browser, "nurse.eva")
    old = browser.cookies["dw_session"]
    r = browser.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert "Max-Age=0" in set_cookies(r)["dw_session"]
    browser.cookies.set("dw_session", old)  # a copied cookie is worthless now
    assert browser.get("/auth/me").status_code == 401
    assert browser.get("/api/v1/alarms").status_code == 401


def test_tokens_need_no_csrf_and_a_wrong_token_is_401(
    app: Any, pool: ConnectionPool, nurse: dict[str, Any]
) -> None:
    with TestClient(app) as client:
        headers = bearer(pool, "admin")
        body = {"name": "Astrid", "phone": "+46 70 123 45 67"}
        assert client.post("/api/v1/patients", json=body, headers=headers).status_code == 201
        me = client.get("/auth/me", headers=headers).json()
        assert (me["role"], me["csrf_token"], me["username"]) == ("admin", None, "admin-None")
        wrong = {"Authorization": "Bearer dw_not-a-token"}
        r = client.get("/api/v1/alarms", headers=wrong)
        assert r.status_code == 401 and "detail" in r.json()
        with pool.connection() as conn:
            conn.execute("UPDATE api_tokens SET revoked_at = now()")
        assert client.get("/api/v1/alarms", headers=headers).status_code == 401


def test_health_metrics_and_docs_stay_open(app: Any) -> None:
    with TestClient(app) as client:
        for path in ("/api/v1/health", "/healthz", "/metrics", "/openapi.json", "/docs"):
            assert client.get(path).status_code in (200, 503), path


@pytest.mark.parametrize(
    ("role", "method", "path", "expected"),
    [
        ("pharmacist", "GET", "/api/v1/alarms", 403),
        ("nurse", "GET", "/api/v1/quarantine", 403),
        ("manager", "GET", "/api/v1/quarantine", 200),
        ("manager", "POST", "/api/v1/teams", 403),
        ("nurse", "POST", "/api/v1/patients", 403),
        ("nurse", "GET", "/api/v1/users", 403),
        ("manager", "GET", "/api/v1/users", 403),
        ("nurse", "GET", "/api/v1/audit", 403),
        ("pharmacist", "GET", "/api/v1/audit.csv", 403),
        ("manager", "GET", "/api/v1/audit", 200),
        ("admin", "GET", "/api/v1/users", 200),
    ],
)
def test_roles(
    app: Any, pool: ConnectionPool, role: str, method: str, path: str, expected: int
) -> None:
    team_id = None if role in ("manager", "admin") else team(pool, "T")
    with TestClient(app) as client:
        r = client.request(method, path, json={"name": "X"}, headers=bearer(pool, role, team_id))
    assert r.status_code == expected, r.text


def test_users_admin_api(app: Any, pool: ConnectionPool, nurse: dict[str, Any]) -> None:
    admin = bearer(pool, "admin")
    with TestClient(app) as client, TestClient(app, base_url=HTTPS) as eva:
        new = {
            "username": "Pharm.Per",
            "name": "Per",
            "role": "pharmacist",
            "team_id": nurse["team_id"],
            "language": "en",
            "password": "long enough!",
        }
        r = client.post("/api/v1/users", json=new, headers=admin)
        assert r.status_code == 201, r.text
        per = r.json()
        assert per["username"] == "pharm.per" and per["active"] and "password" not in str(per)
        assert client.post("/api/v1/users", json=new, headers=admin).status_code == 409
        no_team = {**new, "username": "x1", "team_id": None}
        r = client.post("/api/v1/users", json=no_team, headers=admin)
        assert "body.team_id" in problems(r) and "team" in problems(r)
        short = {**new, "username": "x2", "password": "short"}
        assert client.post("/api/v1/users", json=short, headers=admin).status_code == 422
        names = [u["username"] for u in client.get("/api/v1/users", headers=admin).json()]
        assert names == ["nurse.eva", "pharm.per"]
        # Deactivating a user signs them out at once.
        sign_in(eva, "nurse.eva")
        assert eva.get("/api/v1/alarms").status_code == 200
        patch: dict[str, Any] = {"active": False}
        r = client.patch(f"/api/v1/users/{nurse['id']}", json=patch, headers=admin)
        assert r.status_code == 200 and r.json()["active"] is False
        assert eva.get("/api/v1/alarms").status_code == 401
        r = eva.post("/auth/login", json={"username": "nurse.eva", "password": PASSWORD})
        assert r.status_code == 401
        # Back, with a new password: the old one no longer works.
        patch = {"active": True, "password": "a brand new one"}
        assert client.patch(f"/api/v1/users/{nurse['id']}", json=patch, headers=admin).is_success
        assert sign_in(eva, "nurse.eva", "a brand new one")
        assert client.patch("/api/v1/users/999", json=patch, headers=admin).status_code == 404
        bad = {"role": "manager", "name": None}
        assert (
            client.patch(f"/api/v1/users/{per['id']}", json=bad, headers=admin).status_code == 422
        )
