"""Change a dispenser's schedule: store the new version and re-plan its slots, together.

A version that took effect without its slots being planned again would leave the old doses
watched and the new ones not; one transaction makes the two one fact.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db import schedules as schedule_sql


def change_schedule(
    conn: DbConn,
    dispenser_id: str,
    *,
    timezone: str,
    doses: list[dict[str, Any]],
    valid_from: date,
    valid_until: date | None,
    effective_from: datetime,
    created_by: str,
    now: datetime,
    horizon: timedelta,
) -> dict[str, Any]:
    """Store a version effective from ``effective_from`` (not before now) and re-plan from
    then: slots already due keep their state, later ones follow the new version."""
    with conn.transaction():
        row: dict[str, Any] = schedule_sql.save_schedule(
            conn,
            dispenser_id,
            timezone=timezone,
            doses=doses,
            valid_from=valid_from,
            valid_until=valid_until,
            effective_from=max(effective_from, now),
            created_by=created_by,
            now=now,
        )
        schedule_sql.replan(conn, dispenser_id, now, now + horizon, since=row["effective_from"])
    return row
