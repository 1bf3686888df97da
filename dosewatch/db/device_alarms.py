"""SQL for device alarms: the snapshot each dispenser is judged on, and new occurrences.

The snapshot is one set-based query over every dispenser (latest status, presence, next slot,
power events, schedule versions); the judging is :mod:`dosewatch.domain.device_alarms`, and
opening and clearing go through :mod:`dosewatch.usecases` like every other alarm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from dosewatch.db import DbConn
from dosewatch.domain.alarms import AlarmKind, Priority, priority_rank_sql
from dosewatch.domain.device_alarms import OCCURRENCES, Snapshot
from dosewatch.domain.offline import offline_for_alarm

# Doses left: the supply row the gateway keeps from events and refills, else the newest status.
# Tables must be joined as ``sup`` (dispenser_supply) and ``st`` (dispenser_latest_status).
DOSES_LEFT_SQL = "COALESCE(sup.doses_left, st.doses_left)"

# dosewatch.domain.supply.predicted_empty_at for every dispenser ``d`` at once: the due time of
# the first pending slot beyond the doses left; ``now`` when none are left; NULL when unknown or
# enough. A test runs it against the domain function on the same cases.
EMPTY_AT_SQL = f"""
CASE WHEN {DOSES_LEFT_SQL} IS NULL THEN NULL
     WHEN {DOSES_LEFT_SQL} <= 0 THEN %(now)s::timestamptz
     ELSE (SELECT due_at FROM dose_slots WHERE dispenser_id = d.id AND state = 'pending'
           AND due_at > %(now)s ORDER BY due_at OFFSET {DOSES_LEFT_SQL} LIMIT 1) END
"""

# The gateway keeps a latest-state row per dispenser (status, supply, config applied); this reads
# those rather than the history tables. Only "since when off mains" needs the history.
_SNAPSHOT = f"""
SELECT d.id AS dispenser_id, d.patient_id, pa.team_id, p.online, p.online_changed_at,
       p.last_seen_at,
       nxt.due_at AS next_due_at, COALESCE(nxt.time_critical, false) AS next_due_critical,
       st.on_mains, st.battery_pct, st.temperature_c,
       {DOSES_LEFT_SQL} AS doses_left, {EMPTY_AT_SQL} AS empty_at,
       pw.lost_at, off.since AS off_mains_since,
       sch.version AS schedule_version, sch.created_at AS schedule_set_at,
       cs.applied_version,
       (SELECT count(*) FROM dose_slots s WHERE s.dispenser_id = d.id AND s.state = 'pending'
          AND s.due_at > %(now)s AND s.due_at <= %(now)s + interval '48 hours') AS doses_next_48h
FROM dispensers d
JOIN patients pa ON pa.id = d.patient_id
LEFT JOIN dispenser_presence p ON p.dispenser_id = d.id
LEFT JOIN dispenser_latest_status st ON st.dispenser_id = d.id
LEFT JOIN dispenser_supply sup ON sup.dispenser_id = d.id
LEFT JOIN dispenser_config_state cs ON cs.dispenser_id = d.id
LEFT JOIN LATERAL (
    SELECT due_at, time_critical FROM dose_slots
    WHERE dispenser_id = d.id AND state = 'pending' AND due_at > %(now)s
    ORDER BY due_at LIMIT 1) nxt ON true
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
-- A training team's dispensers are stand-ins, not devices in a home: their conditions come only
-- from the training trigger, and this sweep neither raises nor clears them.
WHERE NOT EXISTS (SELECT 1 FROM teams tt WHERE tt.id = pa.team_id AND tt.training)
"""


@dataclass(frozen=True)
class Judged:
    """A dispenser's snapshot and whose it is (an alarm opened for it pages that team)."""

    snapshot: Snapshot
    patient_id: int
    team_id: int | None


def snapshots(conn: DbConn, now: datetime, offline_after: timedelta) -> list[Judged]:
    """Inside the sweep's transaction. Over a few weeks of hypertable chunks the planner's
    estimate passes ``jit_above_cost`` and PostgreSQL spends 2 s compiling a query that runs in
    under 0.1 s, at every sweep: JIT is off for this transaction."""
    conn.execute("SET LOCAL jit = off")
    rows = conn.execute(_SNAPSHOT, {"now": now}).fetchall()
    return [
        Judged(
            Snapshot(
                dispenser_id=r["dispenser_id"],
                offline=offline_for_alarm(
                    r["online"], r["online_changed_at"], r["last_seen_at"], now, offline_after
                ),
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
            ),
            r["patient_id"],
            r["team_id"],
        )
        for r in rows
    ]


class OpenDeviceAlarm(TypedDict):
    id: int
    kind: str
    cleared_at: datetime | None


def open_device_alarms(conn: DbConn, dispenser_id: str) -> dict[str, OpenDeviceAlarm]:
    rows = conn.execute(
        "SELECT id, kind, cleared_at FROM alarms WHERE dispenser_id = %s AND slot_id IS NULL"
        " AND resolved_at IS NULL",
        (dispenser_id,),
    ).fetchall()
    return {r["kind"]: r for r in rows}


@dataclass(frozen=True)
class Occurrence:
    """A jam, error or help press newer than that kind's last alarm for the dispenser."""

    dispenser_id: str
    kind: AlarmKind
    priority: Priority
    patient_id: int
    team_id: int | None


def new_occurrences(conn: DbConn, lookback_from: datetime) -> list[Occurrence]:
    """Per dispenser and kind, the reports since ``lookback_from`` that no alarm covers yet
    (an alarm open when the report came, or opened since, covers it); the most urgent priority
    of the reports wins."""
    values = [(t, kind.value, prio.value) for t, (kind, prio) in OCCURRENCES.items()]
    rows = conn.execute(
        "WITH k(type, kind, priority) AS (SELECT * FROM unnest(%s::text[], %s::text[],"
        "   %s::text[])),"
        " latest AS (SELECT e.dispenser_id, k.kind, (array_agg(k.priority ORDER BY"
        f"   {priority_rank_sql('k.priority')}))[1] AS priority,"
        "   max(e.received_at) AS last_at"
        "   FROM dose_events e JOIN k ON k.type = e.type"
        "   WHERE e.received_at > %s GROUP BY e.dispenser_id, k.kind)"
        " SELECT l.dispenser_id, l.kind, l.priority, d.patient_id, pa.team_id"
        " FROM latest l JOIN dispensers d ON d.id = l.dispenser_id"
        " JOIN patients pa ON pa.id = d.patient_id"
        " WHERE NOT EXISTS (SELECT 1 FROM alarms a WHERE a.dispenser_id = l.dispenser_id"
        "   AND a.kind = l.kind AND (a.resolved_at IS NULL OR a.resolved_at >= l.last_at))"
        " ORDER BY l.dispenser_id, l.kind",
        ([v[0] for v in values], [v[1] for v in values], [v[2] for v in values], lookback_from),
    ).fetchall()
    return [
        Occurrence(
            r["dispenser_id"], AlarmKind(r["kind"]), Priority(r["priority"]), r["patient_id"],
            r["team_id"],
        )
        for r in rows
    ]  # fmt: skip
