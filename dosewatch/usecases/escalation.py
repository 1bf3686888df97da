"""Execute due escalation steps and reminders: one transaction per claimed batch.

The alarms are locked (``FOR UPDATE SKIP LOCKED``); each due step is planned by
:func:`dosewatch.domain.escalation.plan_step`, its notifications are inserted with idempotency
keys, the alarm's position and ``next_step_at`` move on, and a history row says who was paged
how. Nothing is sent here; the outbox dispatcher does that after commit. A process killed
anywhere in here leaves either the whole step or none of it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from dosewatch.db import DbConn
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import escalation as escalation_sql
from dosewatch.db import notifications as outbox_sql
from dosewatch.db import teams as team_sql
from dosewatch.domain.escalation import (
    OnDuty,
    Position,
    StepPlan,
    Target,
    outbox_key,
    plan_step,
    stops,
)
from dosewatch.domain.training import may_page, screen_step

log = logging.getLogger(__name__)


def run_due_steps(conn: DbConn, now: datetime, limit: int = 1000) -> int:
    """Execute up to ``limit`` due steps; return how many alarms were claimed."""
    with conn.transaction():
        due = escalation_sql.claim_due(conn, now, limit)
        live = []
        for a in due:
            if stops(
                a["acknowledged_at"] is not None,
                a["cleared_at"] is not None,
                a["resolved_at"] is not None,
            ):
                escalation_sql.stop(conn, a["id"], now)
            else:
                live.append(a)
        policies = escalation_sql.policies_by_id(conn, [a["policy_id"] for a in live])
        # Who is on duty when each step was due, not when the sweep got to it; read once per
        # (team, due time), so a thousand alarms due in the same second cost one query.
        rosters: dict[tuple[int | None, datetime], list[OnDuty]] = {}
        planned: list[tuple[escalation_sql.DueAlarm, StepPlan]] = []
        for a in live:
            policy = policies[a["policy_id"]]
            done = _position(a)
            due_at = a["next_step_at"]
            number = None
            if policy.steps[done.step_index].target is Target.PATIENT_CONTACT:
                number = escalation_sql.patient_contact(conn, a["patient_id"])
            team, key = a["team_id"], (a["team_id"], due_at)
            if key not in rosters:
                found = escalation_sql.on_duty(conn, [team], due_at)
                rosters[key] = [] if team is None else found.get(team, [])
            planned.append((a, plan_step(policy, done, due_at, rosters[key], number)))
        planned = _screen_training(conn, planned)
        escalation_sql.set_positions(
            conn,
            [
                (a["id"], p.next.position.step_index, p.next.position.round, p.next.at)
                for a, p in planned
            ],
        )
        rows: list[outbox_sql.OutboxRow] = [
            {
                "alarm_id": a["id"],
                "key": outbox_key(
                    a["id"], a["epoch"], Position(a["step_index"], a["step_round"]), n.key
                ),
                "purpose": n.purpose,
                "channel": n.channel.value,
                "nurse_id": n.nurse_id,
                "to_number": n.to_number,
                "language": n.language,
                "step_index": a["step_index"],
                "step_round": a["step_round"],
            }
            for a, p in planned
            for n in p.notices
        ]
        outbox_sql.insert_many(conn, rows, now)
        alarm_sql.add_history_many(
            conn,
            [(a["id"], p.history) for a, p in planned],
            now,
            "escalated",
            "system",
            "automatic",
        )
    for a, p in planned:
        if p.history["reached_no_one"]:
            log.warning("alarm %s: step %s reached no one", a["id"], a["step_index"])
    return len(due)


def _screen_training(
    conn: DbConn, planned: list[tuple[escalation_sql.DueAlarm, StepPlan]]
) -> list[tuple[escalation_sql.DueAlarm, StepPlan]]:
    """Training alarms' steps pass :func:`dosewatch.domain.training.screen_step`: one query for
    which teams train, and one for the real numbers only when some do."""
    training = team_sql.training_teams(conn, [a["team_id"] for a, _ in planned])
    if not training:
        return planned
    phones = [n.to_number for a, p in planned if a["team_id"] in training for n in p.notices]
    real = team_sql.real_numbers(conn, [n for n in phones if n is not None])
    return [(a, screen_step(p, real) if a["team_id"] in training else p) for a, p in planned]


def _position(a: escalation_sql.DueAlarm) -> Position:
    return Position(a["step_index"], a["step_round"])


def send_reminders(conn: DbConn, now: datetime, limit: int = 500) -> int:
    """Acknowledged but unresolved for too long: remind the nurse who has it, once; with the
    policy's ``reopen_after_reminder``, take the acknowledgement back and page from the top."""
    with conn.transaction():
        rows = escalation_sql.claim_reminders(conn, now, limit)
        policies = escalation_sql.policies_by_id(conn, [r["policy_id"] for r in rows])
        for alarm in rows:
            policy = policies[alarm["policy_id"]]
            nurse_id = alarm["acknowledged_nurse_id"]
            nurse = escalation_sql.nurse(conn, nurse_id) if nurse_id is not None else None
            if nurse is not None and team_sql.is_training_team(conn, alarm["team_id"]):
                # A training alarm reminds only a nurse of its own team, on no real number.
                real = team_sql.real_numbers(conn, [nurse["phone"]])
                if nurse["team_id"] != alarm["team_id"] or not may_page(nurse["phone"], real):
                    nurse = None
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
