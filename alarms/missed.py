"""The missed-dose sweep: close due windows into alarms, first step included.

A thin loop around :func:`dosewatch.usecases.windows.close_windows`: one transaction per batch
of due slots, each batch deciding missed or unknown by the domain rule and opening its alarms
with their first notifications in the outbox — so when the 08:00 rush closes thousands of
windows in one second, each alarm's first SMS is queued the moment the alarm exists. Later steps
are the escalation sweep's (:mod:`alarms.escalation`).

Any number of processes may run this: slots are claimed with ``FOR UPDATE SKIP LOCKED`` and the
unique index on ``alarms.slot_id`` would refuse a second alarm for a slot regardless. The same
property lets one process drain a backlog over ``parallel`` connections at once: when the first
batch comes back full (the rush), the rest is shared by that many threads, so a lone alarm
process uses every core the database has instead of one.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.domain.offline import OFFLINE_AFTER
from dosewatch.usecases.windows import close_windows

log = logging.getLogger(__name__)


def sweep_missed_doses(
    pool: ConnectionPool,
    clock: Clock,
    batch: int = 2000,
    offline_after: timedelta = OFFLINE_AFTER,
    parallel: int = 2,
) -> list[int]:
    """Close every pending slot whose window has passed; return the ids of alarms opened.
    A dispenser silent for ``offline_after`` counts as offline (the slot becomes unknown)."""

    def one_batch() -> tuple[int, list[int]]:
        with pool.connection() as conn:
            return close_windows(conn, clock.now(), batch, offline_after)

    def drain() -> list[int]:
        opened: list[int] = []
        while True:
            claimed, ids = one_batch()
            opened += ids
            if claimed < batch:
                return opened

    claimed, opened = one_batch()
    if claimed == batch:
        if parallel > 1:
            with ThreadPoolExecutor(parallel, thread_name_prefix="sweep") as workers:
                for ids in workers.map(lambda _: drain(), range(parallel)):
                    opened += ids
        else:
            opened += drain()
    if opened:
        log.info("opened %d missed-dose alarm(s)", len(opened))
    return opened
