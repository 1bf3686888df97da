"""SQL for users, browser sessions, API tokens and sign-in attempts; password hashing.

Passwords are hashed with argon2id (pwdlib). Session ids and API tokens are long random values,
so a fast SHA-256 is enough to store them: the database never holds anything a thief could
present as a credential.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from dosewatch.db import DbConn

Row = dict[str, Any]
ROLES = ("nurse", "pharmacist", "manager", "admin")
ALL_TEAMS_ROLES = frozenset({"manager", "admin"})
LANGUAGES = ("sv", "en")
TOKEN_PREFIX = "dw_"
MIN_PASSWORD = 8

_hasher = PasswordHash((Argon2Hasher(),))
_USER_COLUMNS = "id, username, name, role, team_id, language, active, created_at, updated_at"


class UserError(ValueError):
    """A user or token cannot be stored as asked; the message says why (one line)."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must be at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        # An unknown username costs as long as a wrong password: no timing oracle.
        _hasher.verify(password, _dummy_hash())
        return False
    return bool(_hasher.verify(password, password_hash))


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_role_team(role: str, team_id: int | None) -> None:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if team_id is None and role not in ALL_TEAMS_ROLES:
        raise UserError(f"a {role} belongs to a team: give a team")


def _team_exists(conn: DbConn, team_id: int | None) -> None:
    exists = "SELECT 1 FROM teams WHERE id = %s"
    if team_id is not None and conn.execute(exists, (team_id,)).fetchone() is None:
        raise UserError(f"team {team_id} does not exist")


def find_team(conn: DbConn, team: str) -> int:
    """A team given by id or by name (as on the command line)."""
    row = conn.execute(
        "SELECT id FROM teams WHERE id::text = %s OR name = %s ORDER BY id LIMIT 1", (team, team)
    ).fetchone()
    if row is None:
        raise UserError(f"no team {team!r} (give its id or exact name)")
    return int(row["id"])


# --- users -----------------------------------------------------------------------------------


def create_user(
    conn: DbConn,
    *,
    username: str,
    name: str,
    role: str,
    team_id: int | None,
    language: str,
    password: str,
    now: datetime,
) -> Row:
    """Raises :class:`UserError` for a bad role/team/password, ``UniqueViolation`` if taken."""
    check_role_team(role, team_id)
    _team_exists(conn, team_id)
    row: Row | None = conn.execute(
        "INSERT INTO users (username, name, role, team_id, language, password_hash,"
        " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        f" RETURNING {_USER_COLUMNS}",
        (username.lower(), name, role, team_id, language, hash_password(password), now, now),
    ).fetchone()
    assert row is not None
    return row


def get_user(conn: DbConn, user_id: int) -> Row | None:
    return conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,)).fetchone()


def user_for_login(conn: DbConn, username: str) -> Row | None:
    return conn.execute(
        f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE username = %s",
        (username.lower(),),
    ).fetchone()


def list_users(conn: DbConn) -> list[Row]:
    return conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()


def update_user(conn: DbConn, user_id: int, changes: dict[str, Any], now: datetime) -> Row | None:
    """Apply the given fields (name, role, team_id, language, active, password). Deactivating
    a user or changing their password, role or team ends their sessions."""
    current = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s FOR UPDATE", (user_id,)
    ).fetchone()
    if current is None:
        return None
    merged = {**current, **{k: v for k, v in changes.items() if k != "password"}}
    check_role_team(merged["role"], merged["team_id"])
    if "team_id" in changes:
        _team_exists(conn, merged["team_id"])
    password = changes.get("password")
    row = conn.execute(
        "UPDATE users SET name = %s, role = %s, team_id = %s, language = %s, active = %s,"
        " password_hash = COALESCE(%s, password_hash), updated_at = %s WHERE id = %s"
        f" RETURNING {_USER_COLUMNS}",
        (
            merged["name"],
            merged["role"],
            merged["team_id"],
            merged["language"],
            merged["active"],
            hash_password(password) if password is not None else None,
            now,
            user_id,
        ),
    ).fetchone()
    if password is not None or any(
        row is not None and row[k] != current[k] for k in ("active", "role", "team_id")
    ):
        conn.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,))
    return row


# --- sessions --------------------------------------------------------------------------------


def create_session(
    conn: DbConn,
    user_id: int,
    now: datetime,
    ttl: timedelta,
    client_ip: str | None,
    user_agent: str | None,
) -> tuple[str, str]:
    """Start a session; return (session id for the cookie, CSRF token)."""
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at,"
        " expires_at, client_ip, user_agent) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (digest(session_id), user_id, csrf, now, now, now + ttl, client_ip, user_agent),
    )
    conn.execute("DELETE FROM sessions WHERE expires_at < %s", (now,))
    return session_id, csrf


def touch_session(conn: DbConn, session_id: str, now: datetime, ttl: timedelta) -> Row | None:
    """The session's user (active only) and CSRF token, sliding its expiry; None if unknown,
    expired or the user is inactive."""
    return conn.execute(
        "UPDATE sessions s SET last_seen_at = %(now)s, expires_at = %(exp)s"
        " FROM users u WHERE s.id_hash = %(h)s AND s.expires_at > %(now)s"
        " AND u.id = s.user_id AND u.active"
        " RETURNING u.id, u.username, u.name, u.role, u.team_id, u.language, s.csrf_token",
        {"now": now, "exp": now + ttl, "h": digest(session_id)},
    ).fetchone()


def end_session(conn: DbConn, session_id: str) -> None:
    conn.execute("DELETE FROM sessions WHERE id_hash = %s", (digest(session_id),))


# --- API tokens ------------------------------------------------------------------------------


def create_token(
    conn: DbConn, *, name: str, role: str, team_id: int | None, now: datetime
) -> tuple[Row, str]:
    """Store a new token's hash; return its row and the token itself (shown once)."""
    check_role_team(role, team_id)
    _team_exists(conn, team_id)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO api_tokens (name, role, team_id, token_hash, created_at)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id, name, role, team_id, created_at",
        (name, role, team_id, digest(token), now),
    ).fetchone()
    assert row is not None
    return row, token


def token_principal(conn: DbConn, token: str, now: datetime) -> Row | None:
    return conn.execute(
        "UPDATE api_tokens SET last_used_at = %s WHERE token_hash = %s AND revoked_at IS NULL"
        " RETURNING id, name, role, team_id",
        (now, digest(token)),
    ).fetchone()


# --- sign-in attempts ------------------------------------------------------------------------


def record_attempt(
    conn: DbConn, username: str, client_ip: str, success: bool, now: datetime
) -> None:
    conn.execute(
        "INSERT INTO login_attempts (at, username, client_ip, success) VALUES (%s, %s, %s, %s)",
        (now, username.lower(), client_ip, success),
    )
    # Only the last 15 minutes (and the last success) count; a day is plenty to keep.
    conn.execute("DELETE FROM login_attempts WHERE at < %s", (now - timedelta(days=1),))


def recent_failures(conn: DbConn, column: str, value: str, since: datetime) -> list[datetime]:
    """Failed attempts since ``since`` and since the last success, newest first, by
    ``column`` (``username`` or ``client_ip``)."""
    assert column in ("username", "client_ip")
    rows = conn.execute(
        f"SELECT at FROM login_attempts WHERE {column} = %(v)s AND NOT success AND at > %(since)s"
        f" AND at > COALESCE((SELECT max(at) FROM login_attempts WHERE {column} = %(v)s"
        "   AND success), '-infinity') ORDER BY at DESC",
        {"v": value, "since": since},
    ).fetchall()
    return [r["at"] for r in rows]
