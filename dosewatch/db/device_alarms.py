"""SQL for device alarms: the snapshot each dispenser is judged on, and opening/clearing.

The snapshot is one set-based query over every dispenser (latest status, presence, next slot,
power events, schedule versions); the judging is :mod:`dosewatch.domain.device_alarms`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db.alarms import OFFLINE_AFTER, add_history, stop_and_all_clear
from dosewatch.domain.device_alarms import OCCURRENCES, Condition, Snapshot

Row = dict[str, Any]

# The gateway keeps a latest-state row per dispenser (status, supply, config applied); this reads
# those rather than the history tables. Only "since when off mains" needs the history.
_SNAPSHOT = """
SELECT d.id AS dispenser_id,
       (p.online IS FALSE OR p.last_seen_at < %(stale)s) AS offline,
       nxt.due_at AS next_due_at, COALESCE(nxt.time_critical, false) AS next_due_critical,
       st.on_mains, st.battery_pct, st.temperature_c,
       COALESCE(sup.doses_left, st.doses_left) AS doses_left, empty.due_at AS empty_at,
       pw.lost_at, off.since AS off_mains_since,
       sch.version AS schedule_version, sch.created_at AS schedule_set_at,
       cs.applied_version,
       (SELECT count(*) FROM dose_slots s WHERE s.dispenser_id = d.id AND s.state = 'pending'
          AND s.due_at > %(now)s AND s.due_at <= %(now)s + interval '48 hours') AS doses_next_48h
FROM dispensers d
LEFT JOIN dispenser_presence p ON p.dispenser_id = d.id
LEFT JOIN dispenser_latest_status st ON st.dispenser_id = d.id
LEFT JOIN dispenser_supply sup ON sup.dispenser_id = d.id
LEFT JOIN dispenser_config_state cs ON cs.dispenser_id = d.id
LEFT JOIN LATERAL (
    SELECT due_at, time_critical FROM dose_slots
    WHERE dispenser_id = d.id AND state = 'pending' AND due_at > %(now)s
    ORDER BY due_at LIMIT 1) nxt ON true
LEFT JOIN LATERAL (  -- the first planned dose beyond what is left in the dispenser
    SELECT due_at FROM dose_slots
    WHERE dispenser_id = d.id AND state = 'pending' AND due_at > %(now)s
    ORDER BY due_at OFFSET GREATEST(COALESCE(sup.doses_left, st.doses_left), 0) LIMIT 1
) empty ON COALESCE(sup.doses_left, st.doses_left) > 0
LEFT JOIN LATERAL (
    SELECT CASE WHEN type = 'power_lost' THEN received_at END AS lost_at FROM dose_events
    WHERE dispenser_id = d.id AND type IN ('power_lost', 'power_restored')
    ORDER BY received_at DESC LIMIT 1) pw ON true
LEFT JOIN LATERAL (
    SELECT min(at) AS since FROM dispenser_status
    WHERE dispenser_id = d.id AND on_mains IS FALSE AND at > COALESCE(
        (SELECT max(at) FROM dispenser_status WHERE dispenser_id = d.id AND on_mains), '-infinity')
) off ON st.on_mains IS FALSE
LEFT JOIN LATERAL (
    SELECT version, created_at FROM schedules WHERE dispenser_id = d.id
    ORDER BY version DESC LIMIT 1) sch ON true
"""


def snapshots(
    conn: DbConn, now: datetime, offline_after: timedelta = OFFLINE_AFTER
) -> list[Snapshot]:
    rows = conn.execute(_SNAPSHOT, {"now": now, "stale": now - offline_after}).fetchall()
    return [
        Snapshot(
            dispenser_id=r["dispenser_id"],
            offline=bool(r["offline"]),
            next_due_at=r["next_due_at"],
            next_due_critical=r["next_due_critical"],
            on_mains=r["on_mains"],
            power_lost_since=r["lost_at"] or r["off_mains_since"],
            battery_pct=r["battery_pct"],
            temperature_c=r["temperature_c"],
            doses_left=r["doses_left"],
            doses_next_48h=r["doses_next_48h"],
            empty_at=r["empty_at"],
            schedule_version=r["schedule_version"],
            schedule_set_at=r["schedule_set_at"],
            applied_version=r["applied_version"],
        )
        for r in rows
    ]


def open_alarm(conn: DbConn, dispenser_id: str, c: Condition, now: datetime) -> int | None:
    """Open ``c`` unless an unresolved alarm of its kind is open for this dispenser."""
    row = conn.execute(
        "INSERT INTO alarms (kind, dispenser_id, patient_id, priority, opened_at)"
        " SELECT %s, id, patient_id, %s, %s FROM dispensers WHERE id = %s"
        " ON CONFLICT (dispenser_id, kind) WHERE slot_id IS NULL AND resolved_at IS NULL"
        " DO NOTHING RETURNING id",
        (c.kind, c.priority, now, dispenser_id),
    ).fetchone()
    if row is None:
        return None
    add_history(conn, row["id"], now, "opened", "system", "automatic", c.detail)
    return int(row["id"])


def open_device_alarms(conn: DbConn, dispenser_id: str) -> dict[str, Row]:
    rows = conn.execute(
        "SELECT id, kind, cleared_at FROM alarms WHERE dispenser_id = %s AND slot_id IS NULL"
        " AND resolved_at IS NULL",
        (dispenser_id,),
    ).fetchall()
    return {r["kind"]: r for r in rows}


def clear(conn: DbConn, alarm_id: int, now: datetime, detail: dict[str, Any]) -> None:
    row = conn.execute(
        "UPDATE alarms SET cleared_at = %s WHERE id = %s AND cleared_at IS NULL"
        " AND resolved_at IS NULL RETURNING id",
        (now, alarm_id),
    ).fetchone()
    if row is not None:
        add_history(conn, alarm_id, now, "cleared", "system", "automatic", detail)
        stop_and_all_clear(conn, alarm_id, now, except_nurse=None)


def open_occurrences(conn: DbConn, now: datetime, lookback: timedelta) -> list[int]:
    """An alarm for each jam, error or help press newer than that kind's latest alarm."""
    values = [(t, kind, prio) for t, (kind, prio) in OCCURRENCES.items()]
    rows = conn.execute(
        "WITH k(type, kind, priority) AS (SELECT * FROM unnest(%s::text[], %s::text[],"
        "   %s::text[])),"
        " latest AS (SELECT e.dispenser_id, k.kind, (array_agg(k.priority ORDER BY"
        "   CASE k.priority WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END))[1] AS priority,"
        "   max(e.received_at) AS last_at, jsonb_agg(e.payload->'detail') AS details"
        "   FROM dose_events e JOIN k ON k.type = e.type"
        "   WHERE e.received_at > %s GROUP BY e.dispenser_id, k.kind)"
        " INSERT INTO alarms (kind, dispenser_id, patient_id, priority, opened_at)"
        " SELECT l.kind, l.dispenser_id, d.patient_id, l.priority, %s"
        " FROM latest l JOIN dispensers d ON d.id = l.dispenser_id"
        # A press is covered by an alarm that was open when it came (or opened since).
        " WHERE NOT EXISTS (SELECT 1 FROM alarms a WHERE a.dispenser_id = l.dispenser_id"
        "   AND a.kind = l.kind AND (a.resolved_at IS NULL OR a.resolved_at >= l.last_at))"
        " ON CONFLICT (dispenser_id, kind) WHERE slot_id IS NULL AND resolved_at IS NULL"
        " DO NOTHING RETURNING id",
        (
            [v[0] for v in values],
            [v[1] for v in values],
            [v[2] for v in values],
            now - lookback,
            now,
        ),
    ).fetchall()
    for r in rows:
        add_history(conn, r["id"], now, "opened", "system", "automatic", {"source": "event"})
    return [r["id"] for r in rows]
