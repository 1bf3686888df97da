"""The escalation sweep: execute every due step, writing its notifications to the outbox.

One transaction per claimed batch: the alarms are locked (``FOR UPDATE SKIP LOCKED``), each
due step's notifications are inserted with idempotency keys, the alarm's position and
``next_step_at`` move on (:func:`dosewatch.domain.escalation.advance`), and a history row says
who was paged how. Nothing is sent here; the outbox dispatcher does that after commit. So a
process killed anywhere in this function leaves either the whole step or none of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.db import DbConn
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import escalation as escalation_sql
from dosewatch.db import notifications as outbox_sql
from dosewatch.domain.escalation import (
    Channel,
    Next,
    Policy,
    Position,
    Step,
    Target,
    advance,
    policy_of,
    recipients_for,
    stops,
)

log = logging.getLogger(__name__)


def run_escalations(pool: ConnectionPool, clock: Clock, batch: int = 1000) -> int:
    """Execute every escalation step that is due now; return how many steps ran."""
    done = 0
    while True:
        with pool.connection() as conn, conn.transaction():
            now = clock.now()
            alarms = escalation_sql.claim_due(conn, now, batch)
            execute_steps(conn, alarms, now)
        done += len(alarms)
        if len(alarms) < batch:
            return done


@dataclass
class Planned:
    """One alarm's due step, decided but not yet written."""

    alarm: dict[str, Any]
    policy: Policy
    outbox: list[dict[str, Any]]  # rows for notifications.insert_many, keys without the alarm
    next: Next
    history: dict[str, Any]


def execute_steps(conn: DbConn, alarms: list[dict[str, Any]], now: datetime) -> None:
    """Execute the due step of each claimed alarm with a few set-based statements."""
    live = []
    for alarm in alarms:
        if stops(
            alarm["acknowledged_at"] is not None,
            alarm["cleared_at"] is not None,
            alarm["resolved_at"] is not None,
        ):
            escalation_sql.stop(conn, alarm["id"], now)
        else:
            live.append(alarm)
    plans = plan_steps(conn, live)
    escalation_sql.set_positions(
        conn,
        [
            (
                p.alarm["id"],
                # Copy the policy onto the alarm only the first time (a default one).
                p.policy if p.alarm["policy"] is None else None,
                p.next.position.step_index,
                p.next.position.round,
                p.next.at,
            )
            for p in plans
        ],
    )
    write_steps(conn, plans, now)


def plan_steps(conn: DbConn, alarms: list[dict[str, Any]]) -> list[Planned]:
    """Decide each alarm's due step: who gets what, and where the alarm goes next.

    The roster is read once per (team, due time), so the 08:00 rush (thousands of alarms due
    in the same second) costs a handful of queries per batch, not several per alarm.
    """
    rosters: dict[tuple[int | None, datetime], list[dict[str, Any]]] = {}
    plans = []
    for alarm in alarms:
        policy = policy_of(alarm["policy"])
        step = policy.steps[alarm["step_index"]]
        due = alarm["next_step_at"]
        if step.target is Target.PATIENT_CONTACT:
            number = escalation_sql.patient_contact(conn, alarm["patient_id"])
            outbox = _patient_step(alarm, number)
            notified: list[dict[str, Any]] = [{"patient_contact": True}] if outbox else []
        else:
            # Who is on duty when the step was due, not when the sweep got to it.
            roster_key = (alarm["team_id"], due)
            if roster_key not in rosters:
                rosters[roster_key] = escalation_sql.on_duty(conn, alarm["team_id"], due)
            chosen, outbox = _nurse_step(alarm, step, rosters[roster_key])
            notified = [
                {"nurse_id": n, "channels": [c.value for c in step.channels]} for n in chosen
            ]
        nxt = advance(policy, Position(alarm["step_index"], alarm["step_round"]), due)
        history = {
            "step": alarm["step_index"],
            "round": alarm["step_round"],
            "target": step.target.value,
            "notified": notified,
            "reached_no_one": not notified,
            "next_step_at": nxt.at.isoformat() if nxt.at else None,
        }
        plans.append(Planned(alarm, policy, outbox, nxt, history))
    return plans


def write_steps(conn: DbConn, plans: list[Planned], now: datetime) -> None:
    """Outbox rows (keyed by alarm, epoch, round and step) and one history row per step."""
    rows = []
    for p in plans:
        prefix = (
            f"a{p.alarm['id']}:e{p.alarm['epoch']}:r{p.alarm['step_round']}"
            f":s{p.alarm['step_index']}"
        )
        rows += [{**r, "alarm_id": p.alarm["id"], "key": prefix + r["key"]} for r in p.outbox]
        if p.history["reached_no_one"]:  # logged here: a new alarm has its id only by now
            log.warning("alarm %s: step %s reached no one", p.alarm["id"], p.alarm["step_index"])
    outbox_sql.insert_many(conn, rows, now)
    alarm_sql.add_history_many(
        conn, [(p.alarm["id"], p.history) for p in plans], now, "escalated", "system", "automatic"
    )


def _row(alarm: dict[str, Any], key: str, purpose: str, channel: str, **kw: Any) -> dict[str, Any]:
    return {
        "key": key,
        "purpose": purpose,
        "channel": channel,
        "nurse_id": kw.get("nurse_id"),
        "to_number": kw.get("to_number"),
        "language": kw.get("language", "sv"),
        "step_index": alarm["step_index"],
        "step_round": alarm["step_round"],
    }


def _patient_step(alarm: dict[str, Any], number: str | None) -> list[dict[str, Any]]:
    if number is None:  # no consent recorded: the step is skipped, and says so in the history
        return []
    return [_row(alarm, ":patient", "patient_reminder", Channel.SMS.value, to_number=number)]


def _nurse_step(
    alarm: dict[str, Any], step: Step, on_duty: list[dict[str, Any]]
) -> tuple[list[int], list[dict[str, Any]]]:
    """The nurses chosen, and their outbox rows. The console needs no row: it shows every open
    alarm by itself, and the history records that the step included it."""
    nurses = {n["nurse_id"]: n for n in on_duty}
    chosen = recipients_for(step, [(n["nurse_id"], n["role"]) for n in on_duty])
    rows = [
        _row(
            alarm,
            f":{channel.value}:n{nurse_id}",
            "alarm",
            channel.value,
            nurse_id=nurse_id,
            to_number=nurses[nurse_id]["phone"],
            language=nurses[nurse_id]["language"],
        )
        for nurse_id in chosen
        for channel in step.channels
        if channel is not Channel.CONSOLE
    ]
    return chosen, rows


def run_reminders(pool: ConnectionPool, clock: Clock, batch: int = 500) -> int:
    """Acknowledged but unresolved for too long: remind the nurse who has it, once; optionally
    take the acknowledgement back and page again from the first step."""
    with pool.connection() as conn, conn.transaction():
        now = clock.now()
        rows = escalation_sql.claim_reminders(conn, now, batch)
        for alarm in rows:
            policy = policy_of(alarm["policy"])
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
            if reopen:
                escalation_sql.reopen(conn, alarm["id"], now)
            else:
                escalation_sql.reminded(conn, alarm["id"])
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
