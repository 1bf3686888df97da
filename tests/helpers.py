"""Test helpers: build the registry through SQL, fire messages, move the clock."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from dosewatch.db import registry
from dosewatch.db import schedules as schedule_sql


def add_dispenser(
    pool: ConnectionPool,
    dispenser_id: str,
    now: datetime,
    *,
    doses: list[dict[str, Any]] | None = None,
    timezone: str = "Europe/Stockholm",
    valid_from: date | None = None,
    horizon: timedelta = timedelta(hours=48),
) -> int:
    """A patient with a dispenser and (by default) a 08:00 + 20:00 local schedule, planned."""
    with pool.connection() as conn, conn.transaction():
        patient = registry.create_patient(
            conn,
            name=f"Patient of {dispenser_id}",
            phone="+46 90 000 0000",
            address=None,
            note=None,
        )
        registry.create_dispenser(conn, dispenser_id=dispenser_id, patient_id=patient["id"])
        schedule_sql.save_schedule(
            conn,
            dispenser_id,
            timezone=timezone,
            doses=doses
            if doses is not None
            else [{"time": "08:00", "window_min": 45}, {"time": "20:00", "window_min": 45}],
            valid_from=valid_from or (now - timedelta(days=1)).date(),
            now=now,
        )
        schedule_sql.replan(conn, dispenser_id, now, now + horizon)
        return int(patient["id"])


def slot_states(pool: ConnectionPool, dispenser_id: str) -> dict[datetime, str]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT due_at, state FROM dose_slots WHERE dispenser_id = %s", (dispenser_id,)
        ).fetchall()
    return {r["due_at"]: r["state"] for r in rows}  # type: ignore[call-overload, index]


def alarms_of(pool: ConnectionPool, dispenser_id: str) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        return conn.execute(  # type: ignore[return-value]
            "SELECT * FROM alarms WHERE dispenser_id = %s ORDER BY id", (dispenser_id,)
        ).fetchall()
