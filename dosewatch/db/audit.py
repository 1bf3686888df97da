"""SQL for the audit log: who did or opened what, when (the server clock), from where.

The table is append-only (migration 0006: a trigger raises on UPDATE and DELETE). Actions are
short verbs; the object type says what they apply to:

- ``open``: a patient record was opened (patient, patient_contact, dispenser, alarm);
- ``denied``: a read or change of another team's object, answered 404;
- ``acknowledge``, ``resolve``: alarm actions;
- ``create``, ``update``, ``delete``: schedules, absences, shifts, policies, teams, nurses,
  users, patients, dispensers;
- ``sign_in``, ``sign_in_failed``, ``sign_in_throttled``, ``sign_out``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn

Row = dict[str, Any]
COLUMNS = (
    "id, at, actor_kind, actor_id, actor_name, actor_role, action, object_type, object_id,"
    " detail, client_ip, user_agent"
)


@dataclass(frozen=True)
class Entry:
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str
    actor_role: str | None
    action: str
    object_type: str | None = None
    object_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    client_ip: str | None = None
    user_agent: str | None = None


def record(conn: DbConn, entry: Entry) -> None:
    conn.execute(
        "INSERT INTO audit_log (at, actor_kind, actor_id, actor_name, actor_role, action,"
        " object_type, object_id, detail, client_ip, user_agent)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            entry.at,
            entry.actor_kind,
            entry.actor_id,
            entry.actor_name,
            entry.actor_role,
            entry.action,
            entry.object_type,
            entry.object_id,
            Jsonb(entry.detail),
            entry.client_ip,
            (entry.user_agent or "")[:500] or None,
        ),
    )


def _where(
    start: datetime | None, end: datetime | None, actor: str | None, action: str | None
) -> tuple[str, dict[str, Any]]:
    return (
        " WHERE (%(from)s::timestamptz IS NULL OR at >= %(from)s)"
        " AND (%(to)s::timestamptz IS NULL OR at < %(to)s)"
        " AND (%(actor)s::text IS NULL OR actor_name = %(actor)s)"
        " AND (%(action)s::text IS NULL OR action = %(action)s)",
        {"from": start, "to": end, "actor": actor, "action": action},
    )


def search(
    conn: DbConn,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 500,
    before_id: int | None = None,
) -> list[Row]:
    """Newest first; ``before_id`` pages backwards."""
    where, params = _where(start, end, actor, action)
    return conn.execute(
        f"SELECT {COLUMNS} FROM audit_log{where}"
        " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
        " ORDER BY id DESC LIMIT %(limit)s",
        {**params, "before": before_id, "limit": limit},
    ).fetchall()


def stream(
    conn: DbConn,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> Iterator[Row]:
    """Every matching row, oldest first, fetched in batches (for the CSV export)."""
    where, params = _where(start, end, actor, action)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {COLUMNS} FROM audit_log{where} ORDER BY id", params)
        while batch := cur.fetchmany(1000):
            yield from batch
