"""SQL for absences: time-boxed pauses that suspend a dispenser's slots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dosewatch.db import DbConn
from dosewatch.domain.planning import Absence

Row = dict[str, Any]

_COLUMNS = (
    "id, dispenser_id, starts_at, ends_at, reason, created_by, created_at, ended_at, ended_by,"
    " LEAST(ends_at, COALESCE(ended_at, ends_at)) AS effective_end"
)


def create(
    conn: DbConn,
    dispenser_id: str,
    *,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    by: str,
    now: datetime,
) -> Row:
    row: Row | None = conn.execute(
        "INSERT INTO absences (dispenser_id, starts_at, ends_at, reason, created_by, created_at)"
        f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (dispenser_id, starts_at, ends_at, reason, by, now),
    ).fetchone()
    assert row is not None
    return row


def end_early(conn: DbConn, absence_id: int, *, by: str, now: datetime) -> Row | None:
    """End a pause now; ``None`` if it does not exist or has already ended."""
    return conn.execute(
        f"UPDATE absences SET ended_at = %s, ended_by = %s WHERE id = %s AND ended_at IS NULL"
        f" AND ends_at > %s RETURNING {_COLUMNS}",
        (now, by, absence_id, now),
    ).fetchone()


def get(conn: DbConn, absence_id: int) -> Row | None:
    return conn.execute(f"SELECT {_COLUMNS} FROM absences WHERE id = %s", (absence_id,)).fetchone()


def list_for(conn: DbConn, dispenser_id: str) -> list[Row]:
    return conn.execute(
        f"SELECT {_COLUMNS} FROM absences WHERE dispenser_id = %s ORDER BY starts_at DESC",
        (dispenser_id,),
    ).fetchall()


def overlapping(conn: DbConn, dispenser_id: str, start: datetime, end: datetime) -> list[Absence]:
    rows = conn.execute(
        "SELECT id, starts_at, LEAST(ends_at, COALESCE(ended_at, ends_at)) AS effective_end"
        " FROM absences WHERE dispenser_id = %s AND starts_at < %s"
        " AND LEAST(ends_at, COALESCE(ended_at, ends_at)) > %s",
        (dispenser_id, end, start),
    ).fetchall()
    return [Absence(r["id"], r["starts_at"], r["effective_end"]) for r in rows]
