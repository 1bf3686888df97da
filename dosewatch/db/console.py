"""SQL for the web console: alarm summaries, an alarm's context, the handover, the refill
worklist and console-recorded refills.

Every query takes ``team``: ``None`` reads every team (an admin), a team id reads only that
team's rows. Scoping is in the ``WHERE`` clause of each query, never left to the caller.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db.device_alarms import DOSES_LEFT_SQL, EMPTY_AT_SQL
from dosewatch.db.reports_alarms import REAL_ALARM
from dosewatch.domain.alarms import needs_follow_up, priority_rank_sql
from dosewatch.domain.supply import after_refill

Row = dict[str, Any]

_SUMMARY = """
SELECT a.id, a.kind, a.priority, a.state, a.opened_at, a.acknowledged_at, a.acknowledged_by,
       a.cleared_at, a.resolved_at, a.resolved_by, a.outcome, a.note, a.slot_due_at,
       a.dispenser_id, a.patient_id, a.team_id, a.step_index, a.step_round, a.next_step_at,
       p.name AS patient_name, p.phone AS patient_phone, p.address AS patient_address,
       t.name AS team_name, COALESCE(t.training, false) AS training
FROM alarms a JOIN patients p ON p.id = a.patient_id LEFT JOIN teams t ON t.id = a.team_id
WHERE (%(team)s::bigint IS NULL OR a.team_id = %(team)s OR p.team_id = %(team)s)
"""
# dosewatch.domain.alarms.console_order in SQL (a test holds the two together): unacknowledged
# first (open, then cleared-but-owed), then acknowledged; most urgent first; then the alarm
# waiting longest first.
_ORDER = f"""
ORDER BY (a.acknowledged_at IS NOT NULL), (a.state = 'cleared'),
         {priority_rank_sql("a.priority")}, a.opened_at, a.id
"""


def active_alarms(conn: DbConn, team: int | None, limit: int = 5000) -> list[Row]:
    return conn.execute(
        _SUMMARY + " AND a.resolved_at IS NULL" + _ORDER + " LIMIT %(limit)s",
        {"team": team, "limit": limit},
    ).fetchall()


def alarms_by_id(conn: DbConn, team: int | None, ids: list[int]) -> list[Row]:
    return conn.execute(
        _SUMMARY + " AND a.id = ANY(%(ids)s)" + _ORDER, {"team": team, "ids": ids}
    ).fetchall()


def patient(conn: DbConn, team: int | None, patient_id: int) -> Row | None:
    return conn.execute(
        "SELECT p.id, p.name, p.phone, p.address, p.note, p.district, p.team_id,"
        " t.name AS team_name, p.contact_phone, p.contact_sms_consent_at,"
        " COALESCE(t.training, false) AS training"
        " FROM patients p LEFT JOIN teams t ON t.id = p.team_id"
        " WHERE p.id = %(id)s AND (%(team)s::bigint IS NULL OR p.team_id = %(team)s)",
        {"id": patient_id, "team": team},
    ).fetchone()


def recent_slots(conn: DbConn, patient_id: int, now: datetime, days: int = 7) -> list[Row]:
    """The patient's dose slots of the last ``days`` days (all their dispensers), oldest first."""
    return conn.execute(
        "SELECT s.id, s.dispenser_id, s.due_at, s.window_end, s.state, s.label,"
        " s.time_critical, s.local_time FROM dose_slots s"
        " JOIN dispensers d ON d.id = s.dispenser_id"
        " WHERE d.patient_id = %s AND s.due_at >= %s AND s.due_at <= %s ORDER BY s.due_at",
        (patient_id, now - timedelta(days=days), now),
    ).fetchall()


def dispenser_health(conn: DbConn, dispenser_id: str) -> Row:
    """Presence, the newest status, doses left, the config down-link and open device alarms."""
    row = conn.execute(
        "SELECT d.id AS dispenser_id, p.online, p.online_changed_at, p.last_seen_at,"
        " p.clock_offset_s, p.clock_flagged, st.at AS status_at, st.battery_pct, st.on_mains,"
        " st.temperature_c, st.firmware, st.rssi_dbm, su.doses_left, su.doses_left_at,"
        " cs.published_version, cs.applied_version"
        " FROM dispensers d LEFT JOIN dispenser_presence p ON p.dispenser_id = d.id"
        " LEFT JOIN dispenser_latest_status st ON st.dispenser_id = d.id"
        " LEFT JOIN dispenser_supply su ON su.dispenser_id = d.id"
        " LEFT JOIN dispenser_config_state cs ON cs.dispenser_id = d.id WHERE d.id = %s",
        (dispenser_id,),
    ).fetchone()
    health: Row = dict(row) if row else {"dispenser_id": dispenser_id}
    health["device_alarms"] = conn.execute(
        "SELECT id, kind, priority, state, opened_at FROM alarms WHERE dispenser_id = %s"
        " AND slot_id IS NULL AND resolved_at IS NULL ORDER BY opened_at",
        (dispenser_id,),
    ).fetchall()
    return health


def handover(conn: DbConn, team: int | None, since: datetime, until: datetime) -> Row:
    """The shift in numbers and lists: what happened, what is still open, what to follow up."""
    scope = {"team": team, "since": since, "until": until}
    # The counts are real figures: training alarms are left out, as in the reports. The lists
    # below show them, marked training, like the console does.
    opened = conn.execute(
        "SELECT a.kind, a.priority, count(*) AS n FROM alarms a"
        " JOIN patients p ON p.id = a.patient_id"
        " WHERE (%(team)s::bigint IS NULL OR a.team_id = %(team)s OR p.team_id = %(team)s)"
        f" AND a.opened_at >= %(since)s AND a.opened_at < %(until)s AND {REAL_ALARM}"
        " GROUP BY a.kind, a.priority ORDER BY n DESC, a.kind",
        scope,
    ).fetchall()
    resolved = conn.execute(
        _SUMMARY + " AND a.resolved_at >= %(since)s AND a.resolved_at < %(until)s"
        " ORDER BY a.resolved_at",
        scope,
    ).fetchall()
    follow_up = [r for r in resolved if needs_follow_up(r["outcome"], r["note"])]
    return {
        "since": since,
        "until": until,
        "opened": opened,
        "opened_total": sum(r["n"] for r in opened),
        "resolved": resolved,
        "still_active": active_alarms(conn, team, limit=500),
        "follow_up": follow_up,
    }


_WORKLIST = f"""
SELECT d.id AS dispenser_id, p.id AS patient_id, p.name AS patient_name, p.address,
       p.district, p.team_id, t.name AS team_name, {DOSES_LEFT_SQL} AS doses_left,
       CASE WHEN sup.dispenser_id IS NOT NULL THEN sup.doses_left_at
            WHEN st.doses_left IS NOT NULL THEN st.at END AS doses_left_at, empty.at AS empty_at,
       (SELECT count(*) FROM dose_slots s WHERE s.dispenser_id = d.id AND s.state = 'pending'
          AND s.due_at > %(now)s AND s.due_at <= %(now)s + interval '48 hours') AS doses_next_48h,
       r.at AS last_refill_at, r.doses_loaded AS last_refill_doses, r.staff_id AS last_refill_by
FROM dispensers d JOIN patients p ON p.id = d.patient_id LEFT JOIN teams t ON t.id = p.team_id
LEFT JOIN dispenser_supply sup ON sup.dispenser_id = d.id
LEFT JOIN dispenser_latest_status st ON st.dispenser_id = d.id
CROSS JOIN LATERAL (SELECT {EMPTY_AT_SQL} AS at) empty
LEFT JOIN LATERAL (
    SELECT at, doses_loaded, staff_id FROM dispenser_refills WHERE dispenser_id = d.id
    ORDER BY at DESC LIMIT 1) r ON true
WHERE (%(team)s::bigint IS NULL OR p.team_id = %(team)s)
  AND (%(district)s::text IS NULL OR p.district = %(district)s)
ORDER BY empty.at NULLS LAST, {DOSES_LEFT_SQL} NULLS LAST, d.id
LIMIT %(limit)s
"""


def worklist(
    conn: DbConn, team: int | None, now: datetime, district: str | None = None, limit: int = 2000
) -> list[Row]:
    """Dispensers by predicted empty time (:func:`dosewatch.domain.supply.predicted_empty_at`,
    the same SQL as the ``refill_needed`` alarm's); unknown supply last."""
    return conn.execute(
        _WORKLIST, {"team": team, "now": now, "district": district, "limit": limit}
    ).fetchall()


def dispenser_in_scope(conn: DbConn, team: int | None, dispenser_id: str) -> Row | None:
    return conn.execute(
        "SELECT d.id, d.patient_id, p.team_id FROM dispensers d"
        " JOIN patients p ON p.id = d.patient_id"
        " WHERE d.id = %(id)s AND (%(team)s::bigint IS NULL OR p.team_id = %(team)s)",
        {"id": dispenser_id, "team": team},
    ).fetchone()


def record_refill(
    conn: DbConn, dispenser_id: str, doses_loaded: int, staff: str, now: datetime
) -> Row:
    """A refill recorded by staff: history row, and doses left goes up by what was loaded."""
    before = conn.execute(
        "SELECT doses_left FROM dispenser_supply WHERE dispenser_id = %s FOR UPDATE",
        (dispenser_id,),
    ).fetchone()
    doses_left = after_refill(before["doses_left"] if before else None, doses_loaded)
    row = conn.execute(
        "INSERT INTO dispenser_refills (dispenser_id, event_id, at, received_at, doses_loaded,"
        " doses_left, staff_id) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " RETURNING event_id, at, received_at, doses_loaded, doses_left, staff_id",
        (dispenser_id, f"console-{uuid.uuid4()}", now, now, doses_loaded, doses_left, staff),
    ).fetchone()
    conn.execute(
        "INSERT INTO dispenser_supply (dispenser_id, doses_left, doses_left_at, source,"
        " updated_at) VALUES (%s, %s, %s, 'refill_recorded', %s)"
        " ON CONFLICT (dispenser_id) DO UPDATE SET doses_left = EXCLUDED.doses_left,"
        " doses_left_at = EXCLUDED.doses_left_at, source = EXCLUDED.source,"
        " updated_at = EXCLUDED.updated_at",
        (dispenser_id, doses_left, now, now),
    )
    assert row is not None  # INSERT … RETURNING always returns the row
    return dict(row)


def patients(conn: DbConn, team: int | None) -> list[Row]:
    return conn.execute(
        "SELECT p.id, p.name, p.phone, p.address, p.note, p.district, p.team_id,"
        " t.name AS team_name, COALESCE(array_agg(d.id ORDER BY d.id)"
        "   FILTER (WHERE d.id IS NOT NULL), '{}') AS dispensers"
        " FROM patients p LEFT JOIN teams t ON t.id = p.team_id"
        " LEFT JOIN dispensers d ON d.patient_id = p.id"
        " WHERE (%(team)s::bigint IS NULL OR p.team_id = %(team)s)"
        " GROUP BY p.id, t.name ORDER BY p.name, p.id",
        {"team": team},
    ).fetchall()


def dispensers(conn: DbConn, team: int | None) -> list[Row]:
    return conn.execute(
        "SELECT d.id, d.patient_id, p.name AS patient_name, p.team_id, pr.online,"
        " pr.last_seen_at, su.doses_left,"
        " (SELECT max(version) FROM schedules s WHERE s.dispenser_id = d.id) AS schedule_version"
        " FROM dispensers d JOIN patients p ON p.id = d.patient_id"
        " LEFT JOIN dispenser_presence pr ON pr.dispenser_id = d.id"
        " LEFT JOIN dispenser_supply su ON su.dispenser_id = d.id"
        " WHERE (%(team)s::bigint IS NULL OR p.team_id = %(team)s) ORDER BY d.id",
        {"team": team},
    ).fetchall()


def set_district(conn: DbConn, team: int | None, patient_id: int, district: str | None) -> bool:
    row = conn.execute(
        "UPDATE patients SET district = %(d)s WHERE id = %(id)s"
        " AND (%(team)s::bigint IS NULL OR team_id = %(team)s) RETURNING id",
        {"d": district, "id": patient_id, "team": team},
    ).fetchone()
    return row is not None
