"""SQL for schedules and dose slots (planning them, reading them)."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any

from dosewatch.db import DbConn
from dosewatch.domain.schedule import DoseTime, PlannedSlot, Schedule, expand

Row = dict[str, Any]


def to_domain(row: Row) -> Schedule:
    return Schedule(
        timezone=row["timezone"],
        doses=tuple(
            DoseTime(time.fromisoformat(d["time"]), int(d["window_min"])) for d in row["doses"]
        ),
        valid_from=row["valid_from"],
    )


def save_schedule(
    conn: DbConn,
    dispenser_id: str,
    *,
    timezone: str,
    doses: list[dict[str, Any]],
    valid_from: date,
    now: datetime,
) -> Row:
    """Store a new version (the previous ones stay readable) and return it."""
    conn.execute("SELECT 1 FROM dispensers WHERE id = %s FOR UPDATE", (dispenser_id,))
    row = conn.execute(
        "INSERT INTO schedules (dispenser_id, version, timezone, doses, valid_from, created_at)"
        " SELECT %s, COALESCE(MAX(version), 0) + 1, %s, %s, %s, %s"
        " FROM schedules WHERE dispenser_id = %s"
        " RETURNING dispenser_id, version, timezone, doses, valid_from, created_at",
        (dispenser_id, timezone, json.dumps(doses), valid_from, now, dispenser_id),
    ).fetchone()
    assert row is not None
    return row


def current_schedule(conn: DbConn, dispenser_id: str) -> Row | None:
    return conn.execute(
        "SELECT dispenser_id, version, timezone, doses, valid_from, created_at FROM schedules"
        " WHERE dispenser_id = %s ORDER BY version DESC LIMIT 1",
        (dispenser_id,),
    ).fetchone()


def replan(conn: DbConn, dispenser_id: str, now: datetime, horizon_end: datetime) -> int:
    """Re-plan a dispenser's future after a schedule change.

    Pending slots not yet due are dropped and planned again from the current version; slots
    already due (open or closed) keep their state. Slots whose window is still open are planned
    too, so a dose due a minute ago under the new schedule is still watched.
    """
    row = current_schedule(conn, dispenser_id)
    if row is None:
        return 0
    conn.execute(
        "DELETE FROM dose_slots WHERE dispenser_id = %s AND state = 'pending' AND due_at > %s"
        " AND id NOT IN (SELECT slot_id FROM alarms WHERE slot_id IS NOT NULL)",
        (dispenser_id, now),
    )
    return plan(conn, dispenser_id, row, now, horizon_end)


def plan(
    conn: DbConn, dispenser_id: str, schedule_row: Row, now: datetime, horizon_end: datetime
) -> int:
    """Materialise slots up to ``horizon_end``; idempotent (unique per dispenser and due time)."""
    schedule = to_domain(schedule_row)
    earliest_due = now - timedelta(minutes=max((d.window_min for d in schedule.doses), default=0))
    slots = [s for s in expand(schedule, earliest_due, horizon_end) if s.window_end > now]
    return _insert_slots(conn, dispenser_id, schedule_row["version"], slots)


def plan_all(conn: DbConn, now: datetime, horizon_end: datetime) -> int:
    """The rolling-horizon job: top up every scheduled dispenser's slots."""
    rows = conn.execute(
        "SELECT DISTINCT ON (dispenser_id) dispenser_id, version, timezone, doses, valid_from"
        " FROM schedules ORDER BY dispenser_id, version DESC"
    ).fetchall()
    return sum(plan(conn, r["dispenser_id"], r, now, horizon_end) for r in rows)


def _insert_slots(conn: DbConn, dispenser_id: str, version: int, slots: list[PlannedSlot]) -> int:
    if not slots:
        return 0
    cur = conn.execute(
        "INSERT INTO dose_slots (dispenser_id, due_at, window_end, schedule_version)"
        " SELECT %s, d, w, %s FROM unnest(%s::timestamptz[], %s::timestamptz[]) AS t(d, w)"
        " ON CONFLICT (dispenser_id, due_at) DO NOTHING",
        (dispenser_id, version, [s.due_at for s in slots], [s.window_end for s in slots]),
    )
    return cur.rowcount


def list_slots(conn: DbConn, dispenser_id: str, start: datetime, end: datetime) -> list[Row]:
    return conn.execute(
        "SELECT id, due_at, window_end, state, schedule_version, taken_event_id, closed_at"
        " FROM dose_slots WHERE dispenser_id = %s AND due_at >= %s AND due_at < %s"
        " ORDER BY due_at",
        (dispenser_id, start, end),
    ).fetchall()


def slots_for_matching(conn: DbConn, dispenser_id: str, lo: datetime, hi: datetime) -> list[Row]:
    """Candidate slots, locked: the writer decides and updates under the same lock."""
    return conn.execute(
        "SELECT id, due_at, window_end, state FROM dose_slots"
        " WHERE dispenser_id = %s AND due_at BETWEEN %s AND %s ORDER BY due_at FOR UPDATE",
        (dispenser_id, lo, hi),
    ).fetchall()


def set_slot_state(
    conn: DbConn, slot_id: int, state: str, now: datetime, event_id: str | None = None
) -> None:
    conn.execute(
        "UPDATE dose_slots SET state = %s, closed_at = COALESCE(closed_at, %s),"
        " taken_event_id = COALESCE(%s, taken_event_id) WHERE id = %s",
        (state, now, event_id, slot_id),
    )
