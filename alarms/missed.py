"""The missed-dose sweep: close due windows into alarms, first step included.

A thin loop around :func:`dosewatch.usecases.windows.close_windows`: one transaction per batch
of due slots, each batch deciding missed or unknown by the domain rule and opening its alarms
with their first notifications in the outbox — so when the 08:00 rush closes thousands of
windows in one second, each alarm's first SMS is queued the moment the alarm exists. Later steps
are the escalation sweep's (:mod:`alarms.escalation`).

Any number of processes may run this: slots are claimed with ``FOR UPDATE SKIP LOCKED`` and the
unique index on ``alarms.slot_id`` would refuse a second alarm for a slot regardless. The same
property lets a backlog be drained over several connections at once: when the first batch comes
back full (the rush), the rest is shared by ``parallel`` threads, so a lone alarm process uses
every core the database has instead of one. ``parallel`` is also a cap for all alarm processes
together (``DOSEWATCH_SWEEP_CONNECTIONS``): each draining connection holds one of that many
advisory-lock slots, and a thread that finds them all held leaves the backlog to those that
hold them. Two processes with two threads each would run four drains on a two-core database,
which contend and finish later than two (bench/alarms: 5.2 s against 4.5 s).

:class:`Sweeper` runs the sweep at each window's close: between sweeps it sleeps until the next
pending window closes (never longer than the sweep interval, never less than
:data:`MIN_GAP_S`, so a minute of 08:00 closes is taken in batches, not one slot at a time).
The scheduler's interval job keeps running the same sweep as the guarantee; the wake-up only
shortens the wait from the interval to the next close.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.db import opening as opening_sql
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

    def drain() -> list[int]:
        """Close batches until one comes back short, holding a drain slot (none free: return)."""
        opened: list[int] = []
        with pool.connection() as conn:
            slot = opening_sql.take_drain_slot(conn, parallel)
            conn.commit()  # each batch is its own transaction; the slot is the session's
            if slot is None:
                return opened
            try:
                while True:
                    claimed, ids = close_windows(conn, clock.now(), batch, offline_after)
                    opened += ids
                    if claimed < batch:
                        return opened
            finally:
                with contextlib.suppress(psycopg.Error):  # a lost connection took the slot along
                    opening_sql.release_drain_slot(conn, slot)
                    conn.commit()

    with pool.connection() as conn:
        claimed, opened = close_windows(conn, clock.now(), batch, offline_after)
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


# Windows closing less than this apart are swept together: at the 08:00 rush a sweep per closing
# slot would spend the database on per-batch overhead, and a tenth of a second is far inside
# what the first SMS needs.
MIN_GAP_S = 0.1


class Sweeper:
    """The missed-dose sweep of one alarm process, woken at each window's close.

    :meth:`sweep` is also what the scheduler's interval job calls; a lock lets only one of the
    two sweep at a time, so a rush is not swept over twice the connections. Any number of
    processes may each run one: the claims skip what another process holds.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        clock: Clock,
        *,
        max_wait_s: float,
        offline_after: timedelta = OFFLINE_AFTER,
        min_gap_s: float = MIN_GAP_S,
        parallel: int = 2,
    ) -> None:
        self._pool, self._clock, self._parallel = pool, clock, parallel
        self._max_wait_s, self._min_gap_s = max_wait_s, min_gap_s
        self._offline_after = offline_after
        self._sweeping = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweep-at-close", daemon=True)

    def sweep(self) -> list[int]:
        """One sweep (draining any backlog), after this process's other sweep has finished.

        Waiting, not skipping: the interval job then stamps its run (the health self-watch)
        only once a sweep has really completed, so a stuck sweep still shows as one."""
        with self._sweeping:
            return sweep_missed_doses(
                self._pool, self._clock, offline_after=self._offline_after, parallel=self._parallel
            )

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.sweep_then_wait_s())

    def sweep_then_wait_s(self) -> float:
        """Sweep now, then say how long to sleep: until the next window closes, within the
        minimum gap and the interval."""
        started = self._clock.now()
        try:
            self.sweep()
            # After the sweep's own start: a slot that closed while it ran and was not claimed
            # is due now (the minimum gap); one still pending from before it is another
            # process's (locked) and must not keep this one spinning.
            with self._pool.connection() as conn:
                at = opening_sql.next_close(conn, started)
        except (psycopg.Error, OSError) as e:  # the database away: the interval job retries
            log.warning("sweep at window close failed: %s", e)
            return self._max_wait_s
        if at is None:
            return self._max_wait_s
        wait = (at - self._clock.now()).total_seconds()
        return min(self._max_wait_s, max(self._min_gap_s, wait))
