"""The escalation sweep: execute every due step, writing its notifications to the outbox.

A thin loop around :mod:`dosewatch.usecases.escalation`: one transaction per claimed batch (the
alarms locked with ``FOR UPDATE SKIP LOCKED``), so any number of alarm processes can sweep at
once, and a process killed anywhere leaves either the whole step or none of it.
"""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.usecases.escalation import run_due_steps, send_reminders


def run_escalations(pool: ConnectionPool, clock: Clock, batch: int = 1000) -> int:
    """Execute every escalation step that is due now; return how many steps ran."""
    done = 0
    while True:
        with pool.connection() as conn:
            claimed = run_due_steps(conn, clock.now(), batch)
        done += claimed
        if claimed < batch:
            return done


def run_reminders(pool: ConnectionPool, clock: Clock, batch: int = 500) -> int:
    """Acknowledged but unresolved for too long: remind the nurse who has it (see
    :func:`dosewatch.usecases.escalation.send_reminders`)."""
    with pool.connection() as conn:
        return send_reminders(conn, clock.now(), batch)
