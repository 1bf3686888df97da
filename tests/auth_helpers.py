"""Signing tests in: API tokens and users written straight to the database.

Every ``/api/v1`` route needs a caller. The simplest is a bearer token::

    with TestClient(create_app(pool, clock)) as client:
        as_admin(client, pool)           # Authorization: Bearer <a new admin token>

For browser-style sessions, make a user and sign in over HTTPS (the cookies are Secure)::

    user(pool, "nurse.eva", "nurse", team_id)
    client = TestClient(app, base_url="https://testserver")
    csrf = sign_in(client, "nurse.eva")  # send it back as X-CSRF-Token
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dosewatch.db import users as user_sql

PASSWORD = "correct horse battery"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
_T = datetime(2026, 1, 1, tzinfo=UTC)


@functools.cache
def _hash(password: str) -> str:
    # argon2 takes ~0.3 s on purpose; one hash per password for the whole run.
    return user_sql.hash_password(password)


def token(
    pool: ConnectionPool, role: str = "admin", team_id: int | None = None, name: str = "tests"
) -> str:
    with pool.connection() as conn, conn.transaction():
        _, secret = user_sql.create_token(conn, name=name, role=role, team_id=team_id, now=_T)
    return secret


def as_admin(client: TestClient, pool: ConnectionPool) -> TestClient:
    """Authenticate ``client`` with a new admin token; returns it for chaining."""
    client.headers["Authorization"] = f"Bearer {token(pool)}"
    return client


def bearer(pool: ConnectionPool, role: str = "admin", team_id: int | None = None) -> dict[str, str]:
    """Headers carrying a new token with this role and team."""
    return {"Authorization": f"Bearer {token(pool, role, team_id, name=f'{role}-{team_id}')}"}


def user(
    pool: ConnectionPool,
    username: str,
    role: str,
    team_id: int | None = None,
    *,
    password: str = PASSWORD,
    language: str = "en",
    active: bool = True,
) -> dict[str, Any]:
    with pool.connection() as conn, conn.transaction():
        row = conn.execute(
            "INSERT INTO users (username, name, role, team_id, language, active, password_hash,"
            " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id, username, name, role, team_id, language, active",
            (
                username,
                username.title(),
                role,
                team_id,
                language,
                active,
                _hash(password),
                _T,
                _T,
            ),
        ).fetchone()
    assert row is not None
    return dict(row)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign ``client`` in (cookies kept by the client); returns the CSRF token."""
    r = client.post("/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


def team(pool: ConnectionPool, name: str) -> int:
    with pool.connection() as conn, conn.transaction():
        row = conn.execute(
            "INSERT INTO teams (name, created_at) VALUES (%s, %s) RETURNING id", (name, _T)
        ).fetchone()
    assert row is not None
    return int(row["id"])  # type: ignore[call-overload]


# --- every route, for the tests that try them all --------------------------------------------


def all_routes(app: Any | None = None) -> list[tuple[str, str]]:
    """(method, path template) for every HTTP route, including ones left out of the schema."""
    app = app or create_app(None, None)  # type: ignore[arg-type]
    try:  # FastAPI >= 0.16x keeps included routers nested; this walks them
        from fastapi.routing import iter_route_contexts

        found = [(c.path, getattr(c, "methods", None)) for c in iter_route_contexts(app.routes)]
    except ImportError:
        found = [(r.path, getattr(r, "methods", None)) for r in app.routes]  # type: ignore[union-attr]
    return sorted({(m, p) for p, methods in found if p and methods for m in methods if m != "HEAD"})


def params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def fill(path: str, ids: dict[str, Any]) -> str:
    return re.sub(r"{(\w+)}", lambda m: str(ids.get(m.group(1), 1)), path)
