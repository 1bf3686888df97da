"""The periodic jobs: close due slots into alarms, and keep slots planned ahead.

APScheduler only *triggers* these; each run is an idempotent transaction that claims its work in
PostgreSQL, so any number of processes can run them and a restart loses nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import schedules as slot_sql

log = logging.getLogger(__name__)


def sweep_missed_doses(pool: ConnectionPool, clock: Clock, batch: int = 1000) -> list[int]:
    """Close every pending slot whose window has passed; return the ids of alarms opened."""
    opened: list[int] = []
    while True:
        with pool.connection() as conn, conn.transaction():
            ids = alarm_sql.close_due_slots(conn, clock.now(), limit=batch)
        opened += ids
        if len(ids) < batch:
            break
    if opened:
        log.info("opened %d missed-dose alarm(s): %s", len(opened), opened)
    return opened


def plan_slots(pool: ConnectionPool, clock: Clock, horizon: timedelta) -> int:
    now = clock.now()
    with pool.connection() as conn, conn.transaction():
        return slot_sql.plan_all(conn, now, now + horizon)


def start_scheduler(
    pool: ConnectionPool, clock: Clock, *, sweep_interval_s: float, horizon: timedelta
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    # coalesce + max_instances=1: a slow run is never stacked; the next one catches up.
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    scheduler.add_job(
        sweep_missed_doses,
        "interval",
        seconds=sweep_interval_s,
        args=(pool, clock),
        id="sweep",
        next_run_time=datetime.now(UTC),
        **common,
    )
    scheduler.add_job(
        plan_slots,
        "interval",
        minutes=10,
        args=(pool, clock, horizon),
        id="plan",
        next_run_time=datetime.now(UTC),
        **common,
    )
    scheduler.start()
    return scheduler
