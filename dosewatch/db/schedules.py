"""SQL for schedule versions and dose slots: storing versions, planning and listing slots."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db import absences as absence_sql
from dosewatch.domain.planning import Planned, Version, plan
from dosewatch.domain.schedule import DoseTime, Schedule

Row = dict[str, Any]
# The longest window a dose may have: a slot due this long ago may still be open.
MAX_WINDOW = timedelta(minutes=240)
_VERSION_COLUMNS = (
    "dispenser_id, version, timezone, doses, valid_from, valid_until, effective_from,"
    " created_at, created_by"
)


def to_version(row: Row) -> Version:
    doses = tuple(
        DoseTime(
            time.fromisoformat(d["time"]),
            int(d["window_min"]),
            frozenset(d["weekdays"]) if d.get("weekdays") else None,
            d.get("label"),
            bool(d.get("time_critical", False)),
        )
        for d in row["doses"]
    )
    schedule = Schedule(row["timezone"], doses, row["valid_from"], row.get("valid_until"))
    return Version(row["version"], row["effective_from"], schedule)


def save_schedule(
    conn: DbConn,
    dispenser_id: str,
    *,
    timezone: str,
    doses: list[dict[str, Any]],
    valid_from: date,
    now: datetime,
    valid_until: date | None = None,
    effective_from: datetime | None = None,
    created_by: str = "system",
) -> Row:
    """Store a new version (every earlier one stays readable) and return it."""
    conn.execute("SELECT 1 FROM dispensers WHERE id = %s FOR UPDATE", (dispenser_id,))
    row: Row | None = conn.execute(
        f"INSERT INTO schedules ({_VERSION_COLUMNS})"
        " SELECT %(d)s, COALESCE(MAX(version), 0) + 1, %(tz)s, %(doses)s, %(vf)s, %(vu)s,"
        " %(ef)s, %(now)s, %(by)s FROM schedules WHERE dispenser_id = %(d)s"
        f" RETURNING {_VERSION_COLUMNS}",
        {
            "d": dispenser_id,
            "tz": timezone,
            "doses": json.dumps(doses),
            "vf": valid_from,
            "vu": valid_until,
            "ef": effective_from or now,
            "now": now,
            "by": created_by,
        },
    ).fetchone()
    assert row is not None
    return row


def current_schedule(conn: DbConn, dispenser_id: str) -> Row | None:
    """The newest version (which may take effect in the future)."""
    return conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM schedules WHERE dispenser_id = %s"
        " ORDER BY version DESC LIMIT 1",
        (dispenser_id,),
    ).fetchone()


def history(conn: DbConn, dispenser_id: str) -> list[Row]:
    return conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM schedules WHERE dispenser_id = %s ORDER BY version",
        (dispenser_id,),
    ).fetchall()


def versions_for(conn: DbConn, dispenser_id: str, start: datetime, end: datetime) -> list[Version]:
    """The versions in force at some point of ``[start, end)``."""
    rows = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM schedules s WHERE dispenser_id = %(d)s"
        " AND effective_from < %(end)s AND effective_from >= COALESCE("
        "   (SELECT max(effective_from) FROM schedules WHERE dispenser_id = %(d)s"
        "    AND effective_from <= %(start)s), '-infinity')",
        {"d": dispenser_id, "start": start, "end": end},
    ).fetchall()
    return [to_version(r) for r in rows]


def preview(conn: DbConn, dispenser_id: str, start: datetime, end: datetime) -> list[Planned]:
    """What the versions and absences plan for any period; nothing is stored."""
    versions = versions_for(conn, dispenser_id, start, end)
    return plan(versions, absence_sql.overlapping(conn, dispenser_id, start, end), start, end)


def replan(
    conn: DbConn,
    dispenser_id: str,
    now: datetime,
    horizon_end: datetime,
    since: datetime | None = None,
) -> int:
    """Re-plan after a schedule or absence change, from ``since`` (default: now) on.

    Slots already due keep their state; future slots that nothing refers to yet (no alarm, no
    matched event) are dropped and planned again from the versions and absences now in force.
    """
    since = max(since or now, now)
    conn.execute(
        "DELETE FROM dose_slots s WHERE s.dispenser_id = %(d)s AND s.due_at >= %(since)s"
        " AND s.state IN ('pending', 'suspended')"
        " AND NOT EXISTS (SELECT 1 FROM alarms a WHERE a.slot_id = s.id)"
        " AND NOT EXISTS (SELECT 1 FROM dose_events e"
        "                 WHERE e.dispenser_id = s.dispenser_id AND e.slot_id = s.id)",
        {"d": dispenser_id, "since": since},
    )
    return plan_dispenser(conn, dispenser_id, now, horizon_end)


def plan_dispenser(conn: DbConn, dispenser_id: str, now: datetime, horizon_end: datetime) -> int:
    """Materialise slots up to ``horizon_end``; idempotent (unique per dispenser and due time).

    Slots whose window is still open are included, so a dose due a minute ago is still watched.
    """
    planned = [
        p
        for p in preview(conn, dispenser_id, now - MAX_WINDOW, horizon_end)
        if p.slot.window_end > now
    ]
    return _insert(conn, dispenser_id, planned)


def plan_all(conn: DbConn, now: datetime, horizon_end: datetime) -> int:
    """The rolling-horizon job: top up every scheduled dispenser's slots."""
    ids = [r["dispenser_id"] for r in conn.execute("SELECT DISTINCT dispenser_id FROM schedules")]
    return sum(plan_dispenser(conn, d, now, horizon_end) for d in ids)


def _insert(conn: DbConn, dispenser_id: str, planned: list[Planned]) -> int:
    if not planned:
        return 0
    cur = conn.execute(
        "INSERT INTO dose_slots (dispenser_id, due_at, window_end, schedule_version, state,"
        " absence_id, label, time_critical, local_time)"
        " SELECT %s, * FROM unnest(%s::timestamptz[], %s::timestamptz[], %s::int[], %s::text[],"
        " %s::bigint[], %s::text[], %s::boolean[], %s::time[])"
        " ON CONFLICT (dispenser_id, due_at) DO NOTHING",
        (
            dispenser_id,
            [p.slot.due_at for p in planned],
            [p.slot.window_end for p in planned],
            [p.version for p in planned],
            [p.state for p in planned],
            [p.absence_id for p in planned],
            [p.slot.label for p in planned],
            [p.slot.time_critical for p in planned],
            [p.slot.local_time for p in planned],
        ),
    )
    return cur.rowcount


_SLOT_COLUMNS = (
    "id, due_at, window_end, state, schedule_version, taken_event_id, closed_at, label,"
    " time_critical, local_time, absence_id"
)


def list_slots(conn: DbConn, dispenser_id: str, start: datetime, end: datetime) -> list[Row]:
    return conn.execute(
        f"SELECT {_SLOT_COLUMNS} FROM dose_slots"
        " WHERE dispenser_id = %s AND due_at >= %s AND due_at < %s ORDER BY due_at",
        (dispenser_id, start, end),
    ).fetchall()


def suspend_open_slots(conn: DbConn, dispenser_id: str, now: datetime) -> int:
    """Suspend slots already due (window still open) that fall inside an absence."""
    cur = conn.execute(
        "UPDATE dose_slots s SET state = 'suspended', absence_id = a.id FROM absences a"
        " WHERE s.dispenser_id = %(d)s AND a.dispenser_id = %(d)s AND s.state = 'pending'"
        " AND s.due_at < %(now)s AND s.due_at >= a.starts_at"
        " AND s.due_at < LEAST(a.ends_at, COALESCE(a.ended_at, a.ends_at))",
        {"d": dispenser_id, "now": now},
    )
    return cur.rowcount
