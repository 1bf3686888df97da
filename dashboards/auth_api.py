"""Sign-in (``/auth/login``, ``/auth/logout``, ``/auth/me``), users (``/api/v1/users``, admins)
and the audit log (``/api/v1/audit``, ``/api/v1/audit.csv``, managers and admins).

Sign-in is throttled: after 5 failures for a username, or from an address, within 15 minutes
the next attempt answers 429 with ``Retry-After`` (without checking the password); a success
clears the count for its username and address. Attempts are stored, so every web process
counts the same ones, on the app's clock.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from dashboards import auth_schemas as s
from dashboards.access import Admin, Oversight, audit_entry
from dashboards.auth import (
    SESSION_COOKIE,
    SESSION_TTL,
    Principal,
    cookies_secure,
    current_principal,
    session_cookies,
)
from dashboards.deps import Db, Now, not_found
from dashboards.fields import Id, Instant, Name, errors, invalid
from dosewatch.db import DbConn
from dosewatch.db import audit as audit_sql
from dosewatch.db import users as user_sql

router = APIRouter(tags=["sign-in"])
api = APIRouter(prefix="/api/v1", tags=["users and audit"])

THROTTLE_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=15)
WRONG = "wrong username or password"


def _me(p: Principal, csrf: str | None) -> dict[str, Any]:
    return {
        "username": p.username,
        "name": p.name,
        "role": p.role,
        "team_id": p.team_id,
        "language": p.language,
        "csrf_token": csrf,
    }


def _retry_after(conn: DbConn, username: str, ip: str, now: datetime) -> int | None:
    """Seconds until another attempt is allowed, or None if it is allowed now."""
    waits = []
    for column, value in (("username", username.lower()), ("client_ip", ip)):
        failures = user_sql.recent_failures(conn, column, value, now - THROTTLE_WINDOW)
        if len(failures) >= THROTTLE_FAILURES:
            # Allowed again when the 5th most recent failure leaves the window.
            waits.append(failures[THROTTLE_FAILURES - 1] + THROTTLE_WINDOW - now)
    if not waits:
        return None
    return max(1, int(max(waits).total_seconds() + 0.999))


def _secure(request: Request) -> bool:
    host = request.headers.get("host", "")
    return cookies_secure(request.app.state.cookie_secure, request.url.scheme, host)


@router.post("/auth/login", response_model=s.Me, responses=errors(401, 429))
def login(body: s.LoginIn, request: Request, conn: Db, clk: Now) -> Any:
    """Sign in; sets the ``dw_session`` (HttpOnly) and ``dw_csrf`` cookies. Send the CSRF token
    back as ``X-CSRF-Token`` on every POST, PUT, PATCH and DELETE."""
    now, ip = clk.now(), request.client.host if request.client else "unknown"
    username = body.username.strip().lower()
    anonymous = username or "anonymous"
    wait = _retry_after(conn, username, ip, now)
    if wait is not None:
        audit_sql.record(
            conn,
            audit_entry(request, None, "sign_in_throttled", "user", username, actor_name=anonymous),
        )
        return JSONResponse(
            {"detail": "too many failed sign-ins; try again later"},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    user = user_sql.user_for_login(conn, username)
    ok = user_sql.verify_password(body.password, user["password_hash"] if user else None)
    ok = ok and user is not None and bool(user["active"])
    user_sql.record_attempt(conn, username, ip, ok, now)
    if not ok or user is None:
        audit_sql.record(
            conn,
            audit_entry(request, None, "sign_in_failed", "user", username, actor_name=anonymous),
        )
        return JSONResponse({"detail": WRONG}, status_code=401)
    session_id, csrf = user_sql.create_session(
        conn, user["id"], now, SESSION_TTL, ip, request.headers.get("user-agent")
    )
    principal = Principal(
        "user", user["id"], user["name"], user["role"], user["team_id"], user["language"],
        user["username"],
    )  # fmt: skip
    audit_sql.record(conn, audit_entry(request, principal, "sign_in", "user", user["id"]))
    response = JSONResponse(_me(principal, csrf))
    max_age = int(SESSION_TTL.total_seconds())
    for value in session_cookies(session_id, csrf, _secure(request), max_age):
        response.headers.append("set-cookie", value)
    return response


@router.post("/auth/logout", status_code=204, response_class=Response)
def logout(request: Request, conn: Db) -> Response:
    """End the session (needs ``X-CSRF-Token``) and clear its cookies."""
    principal = current_principal(request)
    session_id = getattr(request.state, "session_id", None) or request.cookies.get(SESSION_COOKIE)
    if session_id:
        user_sql.end_session(conn, session_id)
    audit_sql.record(conn, audit_entry(request, principal, "sign_out", "user", principal.id))
    response = Response(status_code=204)
    for value in session_cookies("", "", _secure(request), 0):
        response.headers.append("set-cookie", value)
    return response


@router.get("/auth/me", response_model=s.Me)
def me(request: Request) -> dict[str, Any]:
    """Who is signed in, with the session's CSRF token (null for an API token)."""
    return _me(current_principal(request), getattr(request.state, "csrf_token", None))


# --- users (admins) --------------------------------------------------------------------------


@api.post("/users", status_code=201, response_model=s.User, responses=errors(409))
def create_user(body: s.UserIn, conn: Db, clk: Now, acc: Admin) -> dict[str, Any]:
    try:
        with conn.transaction():
            row = user_sql.create_user(conn, **body.model_dump(), now=clk.now())
    except user_sql.UserError as exc:
        # The role is a checked literal, so what the SQL layer can still refuse is the team.
        invalid(("body", "team_id"), str(exc))
    except psycopg.errors.UniqueViolation:
        raise HTTPException(409, f"the username {body.username!r} is taken") from None
    acc.log("create", "user", row["id"], username=row["username"], role=row["role"])
    return row


@api.get("/users", response_model=list[s.User])
def list_users(conn: Db, _acc: Admin) -> list[dict[str, Any]]:
    return user_sql.list_users(conn)


@api.patch("/users/{user_id}", response_model=s.User, responses=errors(404))
def update_user(user_id: Id, body: s.UserPatch, conn: Db, clk: Now, acc: Admin) -> dict[str, Any]:
    """Change only the fields given. Deactivating a user, or changing their password, role or
    team, signs them out everywhere."""
    changes = body.model_dump(exclude_unset=True)
    try:
        row = user_sql.update_user(conn, user_id, changes, clk.now())
    except user_sql.UserError as exc:
        invalid(("body", "team_id"), str(exc))
    if row is None:
        raise not_found(f"user {user_id}")
    logged = {k: v for k, v in changes.items() if k != "password"}
    acc.log("update", "user", user_id, **logged, password_changed="password" in changes)
    return row


# --- the audit log (managers and admins) -----------------------------------------------------

From = Annotated[Instant | None, Query(alias="from", description="inclusive; with a UTC offset")]
To = Annotated[Instant | None, Query(description="exclusive; with a UTC offset")]
Actor = Annotated[Name | None, Query(description="a username, or token:NAME")]
Action = Annotated[Name | None, Query(description="e.g. open, denied, acknowledge, sign_in")]


@api.get("/audit", response_model=list[s.AuditRow])
def audit(
    conn: Db,
    _acc: Oversight,
    from_: From = None,
    to: To = None,
    actor: Actor = None,
    action: Action = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    before_id: Annotated[Id | None, Query(description="page back: rows older than this")] = None,
) -> list[dict[str, Any]]:
    """Newest first."""
    return audit_sql.search(
        conn, start=from_, end=to, actor=actor, action=action, limit=limit, before_id=before_id
    )


@api.get("/audit.csv", response_class=StreamingResponse)
def audit_csv(
    request: Request,
    _acc: Oversight,
    from_: From = None,
    to: To = None,
    actor: Actor = None,
    action: Action = None,
) -> StreamingResponse:
    """The same rows as CSV, oldest first (all of them: no limit).

    The parameters are validated, and the query run up to its first batch, before the status
    line is sent: anything refused is a 4xx, never a 200 whose stream breaks."""
    pool = request.app.state.pool

    def rows() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([c.strip() for c in audit_sql.COLUMNS.split(",")])
        with pool.connection() as conn, conn.transaction():
            for row in audit_sql.stream(conn, start=from_, end=to, actor=actor, action=action):
                writer.writerow(_csv_row(row))
                if out.tell() > 64_000:
                    yield out.getvalue()
                    out.seek(0)
                    out.truncate()
        yield out.getvalue()

    batches = rows()
    first = next(batches)
    return StreamingResponse(
        itertools.chain([first], batches),  # in batches: memory stays flat however long the log
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="dosewatch-audit.csv"'},
    )


def _csv_row(row: dict[str, Any]) -> list[str]:
    out = []
    for key, value in row.items():
        if key == "detail":
            text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        elif isinstance(value, datetime):
            text = value.isoformat()
        else:
            text = "" if value is None else str(value)
        # A spreadsheet runs a cell that starts like a formula; a user agent is attacker-chosen.
        out.append("'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text)
    return out
