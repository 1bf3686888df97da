"""The escalation sweep: execute every due step, writing its notifications to the outbox.

One transaction per claimed batch: the alarms are locked (``FOR UPDATE SKIP LOCKED``), each
due step's notifications are inserted with idempotency keys, the alarm's position and
``next_step_at`` move on (:func:`dosewatch.domain.escalation.advance`), and a history row says
who was paged how. Nothing is sent here; the outbox dispatcher does that after commit. So a
process killed anywhere in this function leaves either the whole step or none of it.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.db import DbConn
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import escalation as escalation_sql
from dosewatch.db import notifications as outbox_sql
from dosewatch.domain.escalation import (
    DEFAULT_POLICY,
    Channel,
    Policy,
    Position,
    Target,
    advance,
    recipients_for,
    stops,
)

log = logging.getLogger(__name__)


def run_escalations(pool: ConnectionPool, clock: Clock, batch: int = 500) -> int:
    """Execute every escalation step that is due now; return how many steps ran."""
    done = 0
    while True:
        with pool.connection() as conn, conn.transaction():
            now = clock.now()
            alarms = escalation_sql.claim_due(conn, now, batch)
            for alarm in alarms:
                execute_step(conn, alarm, now)
        done += len(alarms)
        if len(alarms) < batch:
            return done


def execute_step(conn: DbConn, alarm: dict[str, Any], now: Any) -> None:
    alarm_id = alarm["id"]
    if stops(
        alarm["acknowledged_at"] is not None,
        alarm["cleared_at"] is not None,
        alarm["resolved_at"] is not None,
    ):
        escalation_sql.stop(conn, alarm_id, now)
        return
    policy = _policy(alarm["policy"])
    position = Position(alarm["step_index"], alarm["step_round"])
    step = policy.steps[position.step_index]
    due = alarm["next_step_at"]
    key = f"a{alarm_id}:e{alarm['epoch']}:r{position.round}:s{position.step_index}"
    notified: list[dict[str, Any]] = []

    if step.target is Target.PATIENT_CONTACT:
        number = escalation_sql.patient_contact(conn, alarm["patient_id"])
        if number is not None:
            outbox_sql.insert(
                conn,
                alarm_id=alarm_id,
                key=f"{key}:patient",
                purpose="patient_reminder",
                channel=Channel.SMS.value,
                now=now,
                to_number=number,
                step=(position.step_index, position.round),
            )
            notified.append({"patient_contact": True, "channel": "sms"})
    else:
        # Who is on duty when the step was due, not when the sweep got to it.
        on_duty = escalation_sql.on_duty(conn, alarm["team_id"], due)
        nurses = {n["nurse_id"]: n for n in on_duty}
        chosen = recipients_for(step, [(n["nurse_id"], n["role"]) for n in on_duty])
        for nurse_id in chosen:
            nurse = nurses[nurse_id]
            for channel in step.channels:
                outbox_sql.insert(
                    conn,
                    alarm_id=alarm_id,
                    key=f"{key}:{channel.value}:n{nurse_id}",
                    purpose="alarm",
                    channel=channel.value,
                    now=now,
                    nurse_id=nurse_id,
                    to_number=nurse["phone"],
                    language=nurse["language"],
                    step=(position.step_index, position.round),
                )
            notified.append({"nurse_id": nurse_id, "channels": [c.value for c in step.channels]})
        if not chosen:
            # Nobody reachable on the roster: the console still shows the alarm, and the
            # history says loudly that this step reached no one.
            outbox_sql.insert(
                conn,
                alarm_id=alarm_id,
                key=f"{key}:console",
                purpose="alarm",
                channel=Channel.CONSOLE.value,
                now=now,
                step=(position.step_index, position.round),
            )
            log.warning("alarm %s: step %s reached no nurse on duty", alarm_id, key)

    nxt = advance(policy, position, due)
    escalation_sql.set_position(
        conn, alarm_id, policy, nxt.position.step_index, nxt.position.round, nxt.at
    )
    alarm_sql.add_history(
        conn,
        alarm_id,
        now,
        "escalated",
        "system",
        "automatic",
        {
            "step": position.step_index,
            "round": position.round,
            "target": step.target.value,
            "notified": notified,
            "reached_no_one": not notified,
            "next_step_at": nxt.at.isoformat() if nxt.at else None,
        },
    )


def run_reminders(pool: ConnectionPool, clock: Clock, batch: int = 500) -> int:
    """Acknowledged but unresolved for too long: remind the nurse who has it, once; optionally
    take the acknowledgement back and page again from the first step."""
    with pool.connection() as conn, conn.transaction():
        now = clock.now()
        rows = escalation_sql.claim_reminders(conn, now, batch)
        for alarm in rows:
            policy = _policy(alarm["policy"])
            nurse = (
                escalation_sql.nurse(conn, alarm["acknowledged_nurse_id"])
                if alarm["acknowledged_nurse_id"] is not None
                else None
            )
            if nurse is not None:
                outbox_sql.insert(
                    conn,
                    alarm_id=alarm["id"],
                    key=f"remind:{alarm['id']}:{now.isoformat()}",
                    purpose="reminder",
                    channel="sms",
                    now=now,
                    nurse_id=nurse["id"],
                    to_number=nurse["phone"],
                    language=nurse["language"],
                )
            reopen = policy.reopen_after_reminder
            conn.execute(
                "UPDATE alarms SET remind_at = NULL"
                + (
                    ", acknowledged_at = NULL, acknowledged_by = NULL,"
                    " acknowledged_nurse_id = NULL, step_index = 0, step_round = 0,"
                    " epoch = epoch + 1,"
                    " next_step_at = %(now)s"
                    if reopen
                    else ""
                )
                + " WHERE id = %(id)s",
                {"now": now, "id": alarm["id"]},
            )
            alarm_sql.add_history(
                conn,
                alarm["id"],
                now,
                "reopened" if reopen else "reminded",
                "system",
                "automatic",
                {"nurse_id": nurse["id"] if nurse else None},
            )
        return len(rows)


def _policy(data: dict[str, Any] | None) -> Policy:
    return DEFAULT_POLICY if data is None else Policy.from_json(data)
