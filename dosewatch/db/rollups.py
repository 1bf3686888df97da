"""The adherence rollup: per dispenser and local day, slot counts by state, kept current.

Every change of a slot (the sweep closing windows, a replayed ``dose_taken`` flipping a slot
from days ago, an absence suspending slots, a schedule change re-planning them) marks its
local day in ``adherence_dirty`` in the same transaction (statement triggers, migration 0012).
:func:`refresh` recomputes exactly those days from ``dose_slots`` in one statement and upserts
them into ``adherence_daily``. The ``rollup`` job runs it every 15 s, and every report runs it
before reading, so a figure is never more than one refresh behind a committed slot.

One statement, one snapshot: the claimed dirty rows and the slots they are recomputed from are
read at the same instant, so a slot changed meanwhile leaves a new dirty row for the next run.
Refreshers are serialised by an advisory lock, so an older snapshot never overwrites a newer
one; a caller that finds the lock taken skips (someone is refreshing right now).

The counting is :mod:`dosewatch.domain.adherence`: the state columns are generated from its
``COUNTED_STATES`` and ``tests/integration/test_rollups.py`` holds the SQL to
:func:`dosewatch.domain.adherence.rollup` on the same slots, daylight-saving days included.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import psycopg
import psycopg.rows
from psycopg_pool import ConnectionPool

from dosewatch.db import DbConn
from dosewatch.domain.adherence import COUNTED_STATES

log = logging.getLogger(__name__)

_LOCK_KEY = 0x726F6C6C  # "roll"
COLUMNS = tuple(state.value for state in COUNTED_STATES)
_COUNTS = ", ".join(f"count(s.id) FILTER (WHERE s.counted = '{c}')::int AS {c}" for c in COLUMNS)
_LIST = ", ".join(COLUMNS)
_SET = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS)
_TOTAL = " + ".join(COLUMNS)
# A slot's local day: its due time in the time zone of the schedule version that planned it.
LOCAL_DAY_SQL = "(s.due_at AT TIME ZONE sc.timezone)::date"
# domain.adherence.counted_state: inside a recorded absence, anything but a take is suspended.
COUNTED_STATE_SQL = (
    "CASE WHEN s.state NOT IN ('taken', 'taken_late') AND EXISTS (SELECT 1 FROM absences ab"
    " WHERE ab.dispenser_id = s.dispenser_id AND s.due_at >= ab.starts_at"
    " AND s.due_at < LEAST(ab.ends_at, COALESCE(ab.ended_at, ab.ends_at)))"
    " THEN 'suspended' ELSE s.state END"
)
# Slots with their local day and counted state, as a relation named ``s``.
SLOTS_SQL = (
    f"(SELECT s.*, sc.timezone, {LOCAL_DAY_SQL} AS local_date, {COUNTED_STATE_SQL} AS counted"
    " FROM dose_slots s JOIN schedules sc"
    " ON sc.dispenser_id = s.dispenser_id AND sc.version = s.schedule_version {where}) s"
)

_REFRESH = f"""
WITH claimed AS (
    DELETE FROM adherence_dirty q
    WHERE (q.dispenser_id, q.local_date) IN (
        SELECT dispenser_id, local_date FROM adherence_dirty
        ORDER BY local_date LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    RETURNING q.dispenser_id, q.local_date
), fresh AS (
    SELECT c.dispenser_id, c.local_date, d.patient_id, {_COUNTS}
    FROM claimed c
    JOIN dispensers d ON d.id = c.dispenser_id
    -- a local day lies within a UTC day either side; the index narrows, the zone decides
    LEFT JOIN LATERAL {
    SLOTS_SQL.format(
        where=(
            "WHERE s.dispenser_id = c.dispenser_id"
            " AND s.due_at >= (c.local_date - 2)::timestamp AT TIME ZONE 'UTC'"
            " AND s.due_at < (c.local_date + 2)::timestamp AT TIME ZONE 'UTC'"
            f" AND {LOCAL_DAY_SQL} = c.local_date"
        )
    )
} ON true
    GROUP BY c.dispenser_id, c.local_date, d.patient_id
), upserted AS (
    INSERT INTO adherence_daily (dispenser_id, local_date, patient_id, {_LIST}, refreshed_at)
    SELECT dispenser_id, local_date, patient_id, {_LIST}, %(now)s FROM fresh
    WHERE {_TOTAL} > 0
    ON CONFLICT (dispenser_id, local_date) DO UPDATE
    SET patient_id = excluded.patient_id, {_SET}, refreshed_at = excluded.refreshed_at
    RETURNING 1
), emptied AS (
    DELETE FROM adherence_daily a USING fresh f
    WHERE f.dispenser_id = a.dispenser_id AND f.local_date = a.local_date
      AND (f.{" + f.".join(COLUMNS)}) = 0
    RETURNING 1
)
SELECT (SELECT count(*) FROM claimed) AS days
"""

_REBUILD = f"""
INSERT INTO adherence_daily (dispenser_id, local_date, patient_id, {_LIST}, refreshed_at)
SELECT s.dispenser_id, s.local_date, d.patient_id, {_COUNTS}, %(now)s
FROM {SLOTS_SQL.format(where="")}
JOIN dispensers d ON d.id = s.dispenser_id
GROUP BY 1, 2, 3
"""


def refresh(conn: DbConn, now: datetime, *, limit: int = 20000, wait: bool = False) -> int:
    """Recompute up to ``limit`` dirty days; the number done (0 when another refresh holds the
    lock and ``wait`` is false). Runs in the caller's transaction."""
    lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    got = _scalar(conn, f"SELECT {lock}(%s)", (_LOCK_KEY,))
    if not wait and not got:
        return 0
    return int(_scalar(conn, _REFRESH, {"limit": limit, "now": now}) or 0)


def refresh_all(conn: DbConn, now: datetime, *, batch: int = 20000) -> int:
    """Refresh until the queue is empty (waiting for the lock); the number of days done."""
    total = 0
    while True:
        n = refresh(conn, now, limit=batch, wait=True)
        total += n
        if n < batch:
            return total


def rebuild(conn: DbConn, now: datetime) -> int:
    """Recompute the whole rollup from the slots in one pass (after a bulk load, or to repair);
    the number of rows written."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    conn.execute("DELETE FROM adherence_dirty")
    conn.execute("DELETE FROM adherence_daily")
    cur = conn.execute(_REBUILD, {"now": now})
    return cur.rowcount


def backlog(conn: DbConn) -> int:
    """Days waiting to be recomputed (a gauge: it should stay near zero)."""
    return int(_scalar(conn, "SELECT count(*) FROM adherence_dirty", ()) or 0)


def _scalar(conn: DbConn, sql: str, params: Any) -> Any:
    """The first column of the first row, whatever the connection's row factory."""
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    return None if row is None else row[0]


def run_job(pool: ConnectionPool, now: datetime) -> int:
    """The ``rollup`` job: one short transaction per batch until the queue is empty."""
    total = 0
    try:
        while True:
            with pool.connection() as conn, conn.transaction():
                n = refresh(conn, now)
            total += n
            if n < 20000:
                return total
    except psycopg.Error:
        log.exception("adherence rollup refresh failed; the dirty days stay queued")
        raise
