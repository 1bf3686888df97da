"""The missed-dose sweep: close due slots and open their alarms, first step included.

A batch of due slots is closed, each gets an alarm with its team's policy copied onto it, and
the policy's first step is planned and written in the same transaction — so when the 08:00
rush closes thousands of windows in one second, each alarm's first notification is in the
outbox as soon as the alarm exists, and the alarm row is written once, already positioned at
its second step. Later steps are the escalation sweep's (:mod:`alarms.escalation`).

Any number of processes may run this: slots are claimed with ``FOR UPDATE SKIP LOCKED`` and the
unique index on ``alarms.slot_id`` would refuse a second alarm for a slot regardless.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from alarms.escalation import plan_steps, write_steps
from dosewatch.clock import Clock
from dosewatch.db import DbConn
from dosewatch.db import alarms as alarm_sql
from dosewatch.domain.escalation import DEFAULT_POLICY

log = logging.getLogger(__name__)


def sweep_missed_doses(
    pool: ConnectionPool,
    clock: Clock,
    batch: int = 1000,
    offline_after: timedelta = alarm_sql.OFFLINE_AFTER,
) -> list[int]:
    """Close every pending slot whose window has passed; return the ids of alarms opened.
    A dispenser silent for ``offline_after`` counts as offline (the slot becomes unknown)."""
    opened: list[int] = []
    while True:
        with pool.connection() as conn, conn.transaction():
            now = clock.now()
            closed = alarm_sql.close_due_slots(conn, now, batch, offline_after)
            opened += open_alarms(conn, closed, now)
        if len(closed) < batch:
            break
    if opened:
        log.info("opened %d missed-dose alarm(s)", len(opened))
    return opened


def open_alarms(conn: DbConn, closed: list[dict[str, Any]], now: datetime) -> list[int]:
    default = DEFAULT_POLICY.to_json()
    alarms = [
        {
            "id": None,  # known after the insert
            "kind": "dose_status_unknown" if c["state"] == "unknown" else "missed_dose",
            "dispenser_id": c["dispenser_id"],
            "patient_id": c["patient_id"],
            "slot_id": c["slot_id"],
            "slot_due_at": c["due_at"],
            "priority": "high" if c["time_critical"] else "medium",
            "team_id": c["team_id"],
            "policy": c["policy"] or default,
            "step_index": 0,
            "step_round": 0,
            "epoch": 0,
            "next_step_at": now,
            "ack_code": f"{secrets.randbelow(10_000):04d}",
        }
        for c in closed
    ]
    plans = plan_steps(conn, alarms)
    for alarm, plan in zip(alarms, plans, strict=True):
        alarm.update(
            step_index=plan.next.position.step_index,
            step_round=plan.next.position.round,
            next_step_at=plan.next.at,
        )
    inserted = {r["slot_id"]: r["id"] for r in alarm_sql.insert_alarms(conn, alarms, now)}
    # The plans were made at step 0; give them their alarm ids and put the positions back for
    # the outbox keys (written by step, not by where the alarm goes next).
    kept = []
    for plan in plans:
        alarm_id = inserted.get(plan.alarm["slot_id"])
        if alarm_id is None:
            continue
        plan.alarm = {**plan.alarm, "id": alarm_id, "step_index": 0, "step_round": 0}
        kept.append(plan)
    ids = [p.alarm["id"] for p in kept]
    alarm_sql.add_history_many(conn, [(i, {}) for i in ids], now, "opened", "system", "automatic")
    write_steps(conn, kept, now)
    return ids
