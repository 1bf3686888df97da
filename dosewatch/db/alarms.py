"""SQL for alarms and their history.

Exactly-once is the database's job, not the scheduler's: closing slots claims them with
``FOR UPDATE SKIP LOCKED`` (so concurrent sweeps share the work instead of queueing on it), and
the partial unique index ``alarms_one_per_slot`` makes a second alarm for a slot impossible
even if two claims ever overlapped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn
from dosewatch.db import escalation as escalation_sql
from dosewatch.db import notifications as outbox_sql
from dosewatch.domain.escalation import policy_of

Row = dict[str, Any]

ALARM_COLUMNS = (
    "id, kind, dispenser_id, patient_id, slot_id, slot_due_at, priority, state, opened_at,"
    " acknowledged_at, acknowledged_by, cleared_at, resolved_at, resolved_by, outcome, note,"
    " team_id, next_step_at, step_index, step_round, remind_at, ack_code, acknowledged_nurse_id"
)

# The SQL form of dosewatch.domain.slots.close_window: a pending slot whose window has closed
# becomes missed, or unknown when the dispenser was offline then (its Last Will said so, or it
# has not been heard from for %(stale)s): the dose may have been taken and not yet reported.
# It returns what opening the alarm needs: the patient, the team and the team's current policy.
_CLOSE_DUE_SLOTS = """
WITH due AS (
    SELECT id, dispenser_id FROM dose_slots
    WHERE state = 'pending' AND window_end <= %(now)s
    ORDER BY window_end LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), closed AS (
    UPDATE dose_slots s
    SET state = CASE WHEN p.online IS FALSE OR p.last_seen_at < %(stale)s
                     THEN 'unknown' ELSE 'missed' END,
        closed_at = %(now)s
    FROM due LEFT JOIN dispenser_presence p ON p.dispenser_id = due.dispenser_id
    WHERE s.id = due.id
    RETURNING s.id, s.dispenser_id, s.due_at, s.time_critical, s.state
), teams AS (
    SELECT c.id AS slot_id, d.patient_id, pa.team_id
    FROM closed c JOIN dispensers d ON d.id = c.dispenser_id
    JOIN patients pa ON pa.id = d.patient_id
), policies AS (
    SELECT DISTINCT ON (team_id) team_id, policy FROM escalation_policies
    WHERE team_id IN (SELECT team_id FROM teams) ORDER BY team_id, version DESC
)
SELECT c.id AS slot_id, c.dispenser_id, c.due_at, c.time_critical, c.state,
       t.patient_id, t.team_id, pol.policy
FROM closed c JOIN teams t ON t.slot_id = c.id LEFT JOIN policies pol ON pol.team_id = t.team_id
"""

# A dispenser reports status every 5 minutes; three missed reports mean it is offline.
OFFLINE_AFTER = timedelta(minutes=15)


def close_due_slots(
    conn: DbConn, now: datetime, limit: int = 1000, offline_after: timedelta = OFFLINE_AFTER
) -> list[Row]:
    """Close pending slots whose window has passed (missed or unknown); the caller opens one
    alarm per row (see :mod:`alarms.missed`)."""
    params = {"now": now, "limit": limit, "stale": now - offline_after}
    return conn.execute(_CLOSE_DUE_SLOTS, params).fetchall()


def insert_alarms(conn: DbConn, rows: list[dict[str, Any]], now: datetime) -> list[Row]:
    """Open many slot alarms in one statement, with their escalation already positioned;
    a slot that has an alarm already gets none (the unique index). Returns (id, slot_id)."""
    if not rows:
        return []
    cols = [
        "kind", "dispenser_id", "patient_id", "slot_id", "slot_due_at", "priority", "team_id",
        "policy", "step_index", "step_round", "next_step_at", "ack_code",
    ]  # fmt: skip
    types = [
        "text", "text", "bigint", "bigint", "timestamptz", "text", "bigint", "jsonb", "int",
        "int", "timestamptz", "text",
    ]  # fmt: skip
    arrays = [[Jsonb(r[c]) if c == "policy" else r[c] for r in rows] for c in cols]
    unnest = ", ".join(f"%s::{t}[]" for t in types)
    return conn.execute(
        f"INSERT INTO alarms ({', '.join(cols)}, opened_at)"
        f" SELECT *, %s FROM unnest({unnest})"
        " ON CONFLICT (slot_id) WHERE slot_id IS NOT NULL DO NOTHING RETURNING id, slot_id",
        (now, *arrays),
    ).fetchall()


def open_missed_dose_alarm(conn: DbConn, slot_id: int, now: datetime, via: str) -> int | None:
    row = conn.execute(
        "INSERT INTO alarms (kind, dispenser_id, patient_id, slot_id, slot_due_at, priority,"
        " opened_at) SELECT 'missed_dose', s.dispenser_id, d.patient_id, s.id, s.due_at,"
        " CASE WHEN s.time_critical THEN 'high' ELSE 'medium' END, %s"
        " FROM dose_slots s JOIN dispensers d ON d.id = s.dispenser_id WHERE s.id = %s"
        " ON CONFLICT (slot_id) WHERE slot_id IS NOT NULL DO NOTHING RETURNING id",
        (now, slot_id),
    ).fetchone()
    if row is None:
        return None
    alarm_id = int(row["id"])
    add_history(conn, alarm_id, now, "opened", "system", via)
    return alarm_id


def clear_for_slot(conn: DbConn, slot_id: int, now: datetime, detail: dict[str, Any]) -> None:
    """The cause went away (a late dose arrived): paging stops and everyone told gets the
    all-clear. Acknowledgement is left as it was: a nurse still owes it."""
    rows = conn.execute(
        "UPDATE alarms SET cleared_at = %s WHERE slot_id = %s AND cleared_at IS NULL"
        " AND resolved_at IS NULL RETURNING id",
        (now, slot_id),
    ).fetchall()
    for r in rows:
        add_history(conn, r["id"], now, "cleared", "system", "automatic", detail)
        stop_and_all_clear(conn, r["id"], now, except_nurse=None)


def acknowledge(
    conn: DbConn, alarm_id: int, now: datetime, actor: str, via: str, nurse_id: int | None = None
) -> Row | None:
    """Acknowledge an unresolved alarm; idempotent. ``None`` if it is resolved or absent.

    Paging stops at once (a nurse has it); a reminder is due after the policy's
    ``remind_after_ack_min`` if it is still unresolved then.
    """
    row = conn.execute(
        "UPDATE alarms SET acknowledged_at = %s, acknowledged_by = %s,"
        " acknowledged_nurse_id = %s WHERE id = %s AND acknowledged_at IS NULL"
        " AND resolved_at IS NULL RETURNING id, policy",
        (now, actor, nurse_id, alarm_id),
    ).fetchone()
    if row is not None:
        add_history(conn, alarm_id, now, "acknowledged", actor, via)
        escalation_sql.stop(conn, alarm_id, now)
        remind = policy_of(row["policy"]).remind_after_ack_min
        if remind is not None:
            conn.execute(
                "UPDATE alarms SET remind_at = %s WHERE id = %s",
                (now + timedelta(minutes=remind), alarm_id),
            )
    current = get_alarm(conn, alarm_id)
    if current is None or current["state"] == "resolved":
        return None
    return current


def resolve(
    conn: DbConn,
    alarm_id: int,
    now: datetime,
    actor: str,
    via: str,
    outcome: str,
    note: str | None,
    nurse_id: int | None = None,
) -> Row | None:
    """Resolve an unresolved alarm. A resolution is also an acknowledgement if none came first."""
    row = conn.execute(
        "UPDATE alarms SET resolved_at = %(now)s, resolved_by = %(actor)s, outcome = %(outcome)s,"
        " note = %(note)s, acknowledged_at = COALESCE(acknowledged_at, %(now)s),"
        " acknowledged_by = COALESCE(acknowledged_by, %(actor)s),"
        " acknowledged_nurse_id = COALESCE(acknowledged_nurse_id, %(nurse)s), remind_at = NULL"
        " WHERE id = %(id)s AND resolved_at IS NULL RETURNING id",
        {
            "now": now,
            "actor": actor,
            "outcome": outcome,
            "note": note,
            "id": alarm_id,
            "nurse": nurse_id,
        },
    ).fetchone()
    if row is None:
        return None
    add_history(conn, alarm_id, now, "resolved", actor, via, {"outcome": outcome, "note": note})
    stop_and_all_clear(conn, alarm_id, now, except_nurse=nurse_id)
    return get_alarm(conn, alarm_id)


def stop_and_all_clear(
    conn: DbConn, alarm_id: int, now: datetime, except_nurse: int | None
) -> None:
    escalation_sql.stop(conn, alarm_id, now)
    for n in outbox_sql.notified_nurses(conn, alarm_id):
        if n["nurse_id"] == except_nurse:
            continue
        outbox_sql.insert(
            conn,
            alarm_id=alarm_id,
            key=f"allclear:{alarm_id}:{n['nurse_id']}",
            purpose="all_clear",
            channel="sms",
            now=now,
            nurse_id=n["nurse_id"],
            to_number=n["to_number"],
            language=n["language"],
        )


def get_alarm(conn: DbConn, alarm_id: int) -> Row | None:
    return conn.execute(f"SELECT {ALARM_COLUMNS} FROM alarms WHERE id = %s", (alarm_id,)).fetchone()


def list_alarms(conn: DbConn, *, state: str | None, limit: int) -> list[Row]:
    return conn.execute(
        f"SELECT {ALARM_COLUMNS} FROM alarms WHERE %(state)s::text IS NULL OR state = %(state)s"
        " ORDER BY opened_at DESC, id DESC LIMIT %(limit)s",
        {"state": state, "limit": limit},
    ).fetchall()


def history(conn: DbConn, alarm_id: int) -> list[Row]:
    return conn.execute(
        "SELECT at, action, actor, via, detail FROM alarm_history WHERE alarm_id = %s"
        " ORDER BY at, id",
        (alarm_id,),
    ).fetchall()


def add_history(
    conn: DbConn,
    alarm_id: int,
    at: datetime,
    action: str,
    actor: str,
    via: str,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO alarm_history (alarm_id, at, action, actor, via, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (alarm_id, at, action, actor, via, Jsonb(detail or {})),
    )


def add_history_many(
    conn: DbConn,
    rows: list[tuple[int, dict[str, Any]]],
    at: datetime,
    action: str,
    actor: str,
    via: str,
) -> None:
    """:func:`add_history` for many alarms (one detail each) in one statement."""
    if not rows:
        return
    conn.execute(
        "INSERT INTO alarm_history (alarm_id, at, action, actor, via, detail)"
        " SELECT id, %s, %s, %s, %s, detail FROM unnest(%s::bigint[], %s::jsonb[])"
        " AS u(id, detail)",
        (at, action, actor, via, [r[0] for r in rows], [Jsonb(r[1]) for r in rows]),
    )
