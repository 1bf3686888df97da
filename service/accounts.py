"""Users and API tokens from the command line (``dosewatch user create``, ``token create``)
and for the demo. Problems become :class:`ConfigError`: one line, exit status 2."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dosewatch.config import ConfigError, Settings
from dosewatch.db import DbConn
from dosewatch.db import audit as audit_sql
from dosewatch.db import users as user_sql


@contextmanager
def _transaction(settings: Settings) -> Iterator[tuple[DbConn, datetime]]:
    from service.runtime import runtime

    with (
        runtime(settings, need_mqtt=False) as rt,
        rt.pool.connection() as conn,
        conn.transaction(),
    ):
        yield conn, rt.clock.now()


def _cli_audit(
    conn: DbConn, now: datetime, object_type: str, object_id: Any, **detail: Any
) -> None:
    audit_sql.record(
        conn,
        audit_sql.Entry(
            at=now,
            actor_kind="system",
            actor_id=None,
            actor_name="cli",
            actor_role=None,
            action="create",
            object_type=object_type,
            object_id=str(object_id),
            detail=detail,
        ),
    )


def _team_id(conn: DbConn, team: str | None) -> int | None:
    return None if team is None else user_sql.find_team(conn, team)


def create_user(
    settings: Settings,
    username: str,
    name: str,
    role: str,
    team: str | None,
    language: str,
    password: str,
) -> dict[str, Any]:
    if language not in user_sql.LANGUAGES:
        raise ConfigError(f"--language: sv or en, not {language!r}")
    try:
        with _transaction(settings) as (conn, now):
            row = user_sql.create_user(
                conn,
                username=username,
                name=name,
                role=role,
                team_id=_team_id(conn, team),
                language=language,
                password=password,
                now=now,
            )
            _cli_audit(conn, now, "user", row["id"], username=row["username"], role=role)
    except user_sql.UserError as exc:
        raise ConfigError(str(exc)) from None
    except psycopg.errors.UniqueViolation:
        raise ConfigError(f"the username {username.lower()!r} is taken") from None
    except psycopg.errors.CheckViolation:
        raise ConfigError(
            f"the username {username!r} is not allowed: 2-64 of a-z 0-9 . _ @ -"
        ) from None
    return row


def create_token(settings: Settings, name: str, role: str, team: str | None) -> str:
    try:
        with _transaction(settings) as (conn, now):
            row, token = user_sql.create_token(
                conn, name=name, role=role, team_id=_team_id(conn, team), now=now
            )
            _cli_audit(conn, now, "api_token", row["id"], name=name, role=role)
    except user_sql.UserError as exc:
        raise ConfigError(str(exc)) from None
    return token


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    password: str


DEMO_USERS = (
    ("demo-admin", "Demo Admin", "admin"),
    ("demo-nurse", "Demo Nurse", "nurse"),
    ("demo-pharmacist", "Demo Pharmacist", "pharmacist"),
    ("demo-manager", "Demo Manager", "manager"),
)


def demo_accounts(conn: DbConn, team_id: int, now: datetime) -> tuple[list[DemoAccount], str]:
    """The demo's admin, nurse, pharmacist and manager (the nurse and the pharmacist in
    ``team_id``), each with a new random password, and a new admin API token. Run again, it
    resets the passwords."""
    accounts = []
    for username, name, role in DEMO_USERS:
        password = secrets.token_urlsafe(9)
        existing = user_sql.user_for_login(conn, username)
        team = team_id if role in ("nurse", "pharmacist") else None
        if existing is None:
            user_sql.create_user(
                conn,
                username=username,
                name=name,
                role=role,
                team_id=team,
                language="en",
                password=password,
                now=now,
            )
        else:
            changes = {"password": password, "active": True, "role": role, "team_id": team}
            user_sql.update_user(conn, existing["id"], changes, now)
        accounts.append(DemoAccount(username, role, password))
    _, token = user_sql.create_token(conn, name="demo admin", role="admin", team_id=None, now=now)
    return accounts, token
