"""The periodic jobs: close due slots into alarms, and keep slots planned ahead.

APScheduler only *triggers* these; each run is an idempotent transaction that claims its work in
PostgreSQL, so any number of processes can run them and a restart loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler
from psycopg_pool import ConnectionPool

from alarms.device import sweep_device_alarms
from alarms.escalation import run_escalations, run_reminders
from alarms.fanout import fan_out
from alarms.missed import Sweeper
from alarms.missed import sweep_missed_doses as sweep_missed_doses  # the sweep, as before
from alarms.notifier import Notifier
from alarms.outbox import Dispatcher
from alarms.scaip import ScaipForwarder
from alarms.sip import SipSender
from alarms.webhooks import WebhookDispatcher
from dosewatch.clock import Clock
from dosewatch.db import health as health_sql
from dosewatch.db import presence as presence_sql
from dosewatch.db import rollups
from dosewatch.db import schedules as slot_sql
from dosewatch.domain.device_alarms import Settings as DeviceSettings
from dosewatch.domain.offline import OFFLINE_AFTER

log = logging.getLogger(__name__)


def plan_slots(pool: ConnectionPool, clock: Clock, horizon: timedelta) -> int:
    now = clock.now()
    with pool.connection() as conn, conn.transaction():
        return slot_sql.plan_all(conn, now, now + horizon)


def mark_offline(pool: ConnectionPool, clock: Clock, after: timedelta) -> list[str]:
    """Heartbeat presence: dispensers silent for ``after`` are recorded as offline."""
    with pool.connection() as conn, conn.transaction():
        return list(presence_sql.mark_silent_offline(conn, clock.now(), after))


def recorded(job: str, pool: ConnectionPool, clock: Clock, work: Callable[[], object]) -> None:
    """Run one job and stamp its success in ``job_runs`` for the self-watch (see health)."""
    work()
    with pool.connection() as conn:
        health_sql.record_run(conn, job, clock.now())


def start_scheduler(
    pool: ConnectionPool,
    clock: Clock,
    *,
    sweep_interval_s: float,
    horizon: timedelta,
    sweep_connections: int = 2,
    notifier: Notifier | None = None,
    tz: ZoneInfo | None = None,
    offline_after: timedelta = OFFLINE_AFTER,
    sip: SipSender | None = None,
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    dispatcher = Dispatcher(pool, clock, notifier, tz or ZoneInfo("Europe/Stockholm"))
    device_cfg = DeviceSettings(offline_after=offline_after)
    webhook_dispatcher = WebhookDispatcher(pool, clock)
    # coalesce + max_instances=1: a slow run is never stacked; the next one catches up.
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    # The sweep also wakes at each window's close (its own thread); this job is the guarantee.
    sweeper = Sweeper(
        pool,
        clock,
        max_wait_s=sweep_interval_s,
        offline_after=offline_after,
        parallel=sweep_connections,
    )
    jobs: dict[str, tuple[Callable[[], object], float]] = {
        "sweep": (sweeper.sweep, sweep_interval_s),
        "escalate": (lambda: run_escalations(pool, clock), sweep_interval_s),
        "remind": (lambda: run_reminders(pool, clock), 30.0),
        "device": (lambda: sweep_device_alarms(pool, clock, device_cfg), 30.0),
        "presence": (lambda: mark_offline(pool, clock, offline_after), 60.0),
        "dispatch": (dispatcher.run, min(2.0, sweep_interval_s)),
        "plan": (lambda: plan_slots(pool, clock, horizon), 600.0),
        "webhooks": (lambda: (fan_out(pool, clock), webhook_dispatcher.run()), 2.0),
        "rollup": (lambda: rollups.run_job(pool, clock.now()), 15.0),  # adherence figures
    }
    if sip is not None:  # SCAIP forwarding: only where a local SIP address is configured
        jobs["scaip"] = (ScaipForwarder(pool, clock, sip).run, 2.0)
    for name, (work, every_s) in jobs.items():
        scheduler.add_job(
            recorded,
            "interval",
            seconds=every_s,
            args=(name, pool, clock, work),
            id=name,
            next_run_time=datetime.now(UTC),
            **common,
        )
    scheduler.add_listener(lambda _: sweeper.stop(wait=False), EVENT_SCHEDULER_SHUTDOWN)
    scheduler.start()
    sweeper.start()
    return scheduler
