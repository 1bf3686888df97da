"""SQL for the escalation timer on alarms, the roster lookup, and stopping an escalation.

The durable timer is ``alarms.next_step_at``. :func:`claim_due` takes alarms whose step is due
with ``FOR UPDATE SKIP LOCKED``, so any number of alarm processes can sweep at once: each alarm
is worked by one of them, and the row lock is held until that step's notifications are in the
outbox and the timer has moved, all in one transaction. A process killed mid-step rolls back;
the next sweep does the step again, and the outbox's idempotency keys keep it from doubling.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn
from dosewatch.db import notifications as outbox_sql
from dosewatch.domain.escalation import Policy

Row = dict[str, Any]


def claim_due(conn: DbConn, now: datetime, limit: int) -> list[Row]:
    return conn.execute(
        "SELECT id, kind, patient_id, team_id, policy, step_index, step_round, epoch, next_step_at,"
        " acknowledged_at, cleared_at, resolved_at FROM alarms"
        " WHERE next_step_at <= %s ORDER BY next_step_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
        (now, limit),
    ).fetchall()


def on_duty(conn: DbConn, team_id: int | None, at: datetime) -> list[Row]:
    """Active nurses of the team whose shift covers ``at``: (nurse_id, role, phone, language)."""
    if team_id is None:
        return []
    return conn.execute(
        "SELECT n.id AS nurse_id, s.role, n.phone, n.language FROM shifts s"
        " JOIN nurses n ON n.id = s.nurse_id"
        " WHERE s.team_id = %s AND s.starts_at <= %s AND %s < s.ends_at AND n.active"
        " ORDER BY s.role, n.id",
        (team_id, at, at),
    ).fetchall()


def patient_contact(conn: DbConn, patient_id: int) -> str | None:
    """The number for a patient reminder, only if consent is recorded."""
    row = conn.execute(
        "SELECT contact_phone FROM patients WHERE id = %s AND contact_sms_consent_at IS NOT NULL",
        (patient_id,),
    ).fetchone()
    return None if row is None else row["contact_phone"]


def set_position(
    conn: DbConn,
    alarm_id: int,
    policy: Policy,
    step_index: int,
    step_round: int,
    next_step_at: datetime | None,
) -> None:
    conn.execute(
        "UPDATE alarms SET policy = %s, step_index = %s, step_round = %s, next_step_at = %s"
        " WHERE id = %s",
        (Jsonb(policy.to_json()), step_index, step_round, next_step_at, alarm_id),
    )


def set_positions(
    conn: DbConn, rows: Sequence[tuple[int, Policy | None, int, int, datetime | None]]
) -> None:
    """:func:`set_position` for many alarms in one statement (a None policy: keep it)."""
    if not rows:
        return
    conn.execute(
        "UPDATE alarms a SET policy = COALESCE(u.policy, a.policy), step_index = u.si,"
        " step_round = u.sr,"
        " next_step_at = u.at FROM unnest(%s::bigint[], %s::jsonb[], %s::int[], %s::int[],"
        " %s::timestamptz[]) AS u(id, policy, si, sr, at) WHERE a.id = u.id",
        (
            [r[0] for r in rows],
            [None if r[1] is None else Jsonb(r[1].to_json()) for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
        ),
    )


def stop(conn: DbConn, alarm_id: int, now: datetime) -> int:
    """No more steps, and nothing still queued for this alarm goes out. Returns cancelled."""
    conn.execute("UPDATE alarms SET next_step_at = NULL WHERE id = %s", (alarm_id,))
    return outbox_sql.cancel_pending(conn, alarm_id, now)


def advance_now(conn: DbConn, alarm_id: int, now: datetime) -> bool:
    """Bring the next step forward to ``now`` (a notification failed for good)."""
    row = conn.execute(
        "UPDATE alarms SET next_step_at = %s WHERE id = %s AND next_step_at > %s"
        " AND acknowledged_at IS NULL AND cleared_at IS NULL AND resolved_at IS NULL"
        " RETURNING id",
        (now, alarm_id, now),
    ).fetchone()
    return row is not None


def claim_reminders(conn: DbConn, now: datetime, limit: int) -> list[Row]:
    return conn.execute(
        "SELECT id, policy, acknowledged_by, acknowledged_nurse_id FROM alarms"
        " WHERE remind_at <= %s AND resolved_at IS NULL"
        " ORDER BY remind_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
        (now, limit),
    ).fetchall()


def reminded(conn: DbConn, alarm_id: int) -> None:
    conn.execute("UPDATE alarms SET remind_at = NULL WHERE id = %s", (alarm_id,))


def reopen(conn: DbConn, alarm_id: int, now: datetime) -> None:
    """Take the acknowledgement back and page again from the first step, in a new epoch (so the
    outbox keys differ from the first time round)."""
    conn.execute(
        "UPDATE alarms SET remind_at = NULL, acknowledged_at = NULL, acknowledged_by = NULL,"
        " acknowledged_nurse_id = NULL, step_index = 0, step_round = 0, epoch = epoch + 1,"
        " next_step_at = %s WHERE id = %s",
        (now, alarm_id),
    )


def nurse(conn: DbConn, nurse_id: int) -> Row | None:
    return conn.execute(
        "SELECT id, team_id, name, phone, language, active FROM nurses WHERE id = %s",
        (nurse_id,),
    ).fetchone()


def nurse_by_phone(conn: DbConn, phone: str) -> list[Row]:
    return conn.execute(
        "SELECT id, team_id, name, phone, language FROM nurses WHERE phone = %s AND active",
        (phone,),
    ).fetchall()


def alarm_for_reply(conn: DbConn, nurse_id: int, code: str | None) -> list[Row]:
    """Unacknowledged alarms this nurse was sent, matching the reply code if one was given."""
    return conn.execute(
        "SELECT DISTINCT a.id FROM alarms a JOIN notifications n ON n.alarm_id = a.id"
        " WHERE n.nurse_id = %s AND n.purpose = 'alarm' AND a.acknowledged_at IS NULL"
        " AND a.resolved_at IS NULL AND (%s::text IS NULL OR a.ack_code = %s) ORDER BY a.id",
        (nurse_id, code, code),
    ).fetchall()
