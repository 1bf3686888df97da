"""The device-alarm sweep: open, and clear, alarms about the dispensers themselves.

Idempotent like every sweep: opening relies on the one-open-per-(dispenser, kind) index, and
clearing only touches alarms whose condition no longer holds. One transaction per run; a
concurrent sweep in another process either waits for the same rows or finds nothing to do.
Opening and clearing go through the same use cases as slot alarms, so a device alarm gets its
team, policy version, reply code and first notification by the same rule.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.db import device_alarms as device_sql
from dosewatch.domain.device_alarms import CONDITION_KINDS, Settings, conditions
from dosewatch.domain.opening import Subject
from dosewatch.usecases.alarm_actions import clear_alarm
from dosewatch.usecases.opening import open_alarms

log = logging.getLogger(__name__)
LOOKBACK = timedelta(hours=24)  # occurrences older than this are history, not news


def sweep_device_alarms(pool: ConnectionPool, clock: Clock, cfg: Settings | None = None) -> int:
    """Return how many alarms were opened or cleared."""
    cfg = cfg or Settings()
    changed = 0
    with pool.connection() as conn, conn.transaction():
        now = clock.now()
        # Serialise device sweeps: two at once would only contend for the same rows.
        conn.execute("SELECT pg_advisory_xact_lock(7421)")
        subjects = [
            Subject(o.kind, o.priority, o.dispenser_id, o.patient_id, o.team_id,
                    detail={"source": "event"})
            for o in device_sql.new_occurrences(conn, now - LOOKBACK)
        ]  # fmt: skip
        for judged in device_sql.snapshots(conn, now, cfg.offline_after):
            snap = judged.snapshot
            holding = {c.kind: c for c in conditions(snap, now, cfg)}
            open_now = device_sql.open_device_alarms(conn, snap.dispenser_id)
            subjects += [
                Subject(c.kind, c.priority, snap.dispenser_id, judged.patient_id,
                        judged.team_id, detail=c.detail)
                for kind, c in holding.items()
                if kind not in open_now
            ]  # fmt: skip
            for kind, alarm in open_now.items():
                if kind in CONDITION_KINDS and kind not in holding and alarm["cleared_at"] is None:
                    changed += clear_alarm(conn, alarm["id"], now, {"condition": "no longer holds"})
        changed += len(open_alarms(conn, subjects, now))
    if changed:
        log.info("device alarms: %d opened or cleared", changed)
    return changed
