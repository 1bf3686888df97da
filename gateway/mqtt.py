"""The gateway's MQTT adapter: paho-mqtt in, batches to :mod:`gateway.writer`, acks after commit.

Delivery is at-least-once end to end: a persistent session (stable client id, no clean start)
at QoS 1, and paho's manual acknowledgement — a PUBACK goes out only after the batch holding
the message is committed. If the process dies before that, the broker redelivers, and the
idempotency ledger turns the redelivery into a counted duplicate.

Connecting (MQTT 5 with a large Receive Maximum, else 3.1.1) is :mod:`gateway.connection`'s job;
telling a session taken over by another client with the same id, and yielding to the one that
was there first, :mod:`gateway.session`'s.

The gateway takes its message source (:class:`MessageSource`): :class:`MqttSource` is the
broker; tests of the gateway's own logic give it an in-memory one and write synchronously
(``tests/gateway_helpers.fire_message``). Errors are told apart: a :class:`psycopg.Error` means
the database is unreachable — the batch stays unacknowledged and is retried with backoff; any
other exception is a bug — logged with its traceback, counted (``dosewatch_gateway_bugs``), the
gateway turns unhealthy (``dosewatch_gateway_healthy`` 0), and the batch is quarantined with its
raw bytes and acknowledged, so one defect never holds every device's acknowledgement forever.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.config import MqttUrl
from dosewatch.db import ingest as ingest_sql
from gateway import downlink, metrics
from gateway.session import SETTLE_S, SessionGuard
from gateway.source import Delivery, MessageSource, MqttSource
from gateway.writer import Inbound, write_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Received:
    inbound: Inbound
    mid: int
    qos: int
    at: float = field(default_factory=time.monotonic)  # arrival, for lag and latency


class Gateway:
    """Receives on the source's thread, writes in batches on its own thread, acks after commit."""

    def __init__(
        self,
        source: MessageSource | MqttUrl,
        pool: ConnectionPool,
        clock: Clock,
        *,
        client_id: str | None = None,
        session_expiry_s: int | None = None,
        prefer_v5: bool = True,
        batch_max: int = 2000,
        batch_delay_s: float = 0.05,
        db_timeout_s: float = 5.0,
        downlink_interval_s: float | None = 5.0,
        share_group: str | None = None,
        session_settle_s: float = SETTLE_S,
    ) -> None:
        """``source`` is any :class:`MessageSource`, or the broker's URL (then ``client_id``
        and ``session_expiry_s`` say which persistent session is ours)."""
        if not isinstance(source, MqttUrl):
            self.source = source
        elif client_id is None or session_expiry_s is None:
            raise TypeError("a broker URL needs client_id and session_expiry_s")
        else:
            self.source = MqttSource(
                source,
                client_id=client_id,
                session_expiry_s=session_expiry_s,
                prefer_v5=prefer_v5,
                share_group=share_group,
            )
        self._downlink_interval_s = downlink_interval_s
        self._pool, self._clock = pool, clock
        self._batch_max, self._batch_delay_s = batch_max, batch_delay_s
        # How long one attempt waits for a pool connection: while the database is down the pool
        # cannot make one, and the backoff below, not the pool's 30 s default, sets the pace.
        self._db_timeout_s = db_timeout_s
        self._inbox: queue.Queue[_Received] = queue.Queue()
        self._stopping = threading.Event()
        self._ready = threading.Event()  # acks need the source started; messages may precede
        self._thread = threading.Thread(target=self._write_loop, name="gateway-writer", daemon=True)
        self.processed = 0  # messages committed (any outcome); tests wait on it
        self.bugs = 0  # defects met (see the module's docstring); healthy while 0
        self._pending = 0  # received, not yet committed: the consumer lag
        self._oldest_pending: float | None = None
        self._lag_lock = threading.Lock()
        metrics.LAG_SECONDS.set_function(self._lag_seconds)
        # Called with each committed batch's messages, after their acks (benchmarks time it).
        self.on_committed: Callable[[list[Inbound]], None] | None = None
        # The broker's session may be another gateway's (the same client id): messages wait in
        # the guard until the session has settled (gateway.session). A test's source has none.
        self.session: SessionGuard[_Received] | None = None
        if isinstance(self.source, MqttSource):
            self.session = SessionGuard(
                self.source.client_id,
                self.source.url.redacted(),
                pool,
                clock,
                accept=self._inbox.put,
                on_dropped=self._forget,
                settle_s=session_settle_s,
            )
            self.source.session = self.session

    @property
    def healthy(self) -> bool:
        return self.bugs == 0

    def start(self, *, writer_thread: bool = True) -> None:
        """Start receiving. Without the writer thread, received messages wait in the inbox
        until :meth:`write_pending` (tests of the gateway's logic: no polling, no sleeping)."""
        if writer_thread:
            self._thread.start()
        self.source.start(self._on_delivery)
        self._ready.set()
        if self._downlink_interval_s is not None and isinstance(self.source, MqttSource):
            threading.Thread(
                target=self._downlink_loop, name="gateway-downlink", daemon=True
            ).start()

    def _downlink_loop(self) -> None:
        """Publish configs for schedules saved anywhere (see downlink.publish_pending)."""
        assert self._downlink_interval_s is not None and isinstance(self.source, MqttSource)
        client = self.source.client
        assert client is not None
        while not self._stopping.wait(self._downlink_interval_s):
            if self.session is not None and self.session.state == "yielded":
                continue  # the broker session is another gateway's: publish nothing for it
            try:
                with self._pool.connection(timeout=self._db_timeout_s) as conn:
                    downlink.publish_pending(conn, client, self._clock.now())
            except (psycopg.Error, OSError):  # the database or broker is away: retry next round
                log.exception("config down-link round failed")
            except Exception:  # a defect: the next round tries again, but health says so
                self._note_bug("downlink")

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._lag_lock:  # what it held goes back to the broker, unacknowledged
            metrics.LAG_MESSAGES.dec(self._pending)
            self._pending, self._oldest_pending = 0, None
        self.source.stop()
        if self.session is not None:
            self.session.stop()

    def _on_delivery(self, d: Delivery) -> None:
        inbound = Inbound(d.topic, d.payload, self._clock.now(), retained=d.retained)
        received = _Received(inbound, d.mid, d.qos)
        with self._lag_lock:
            self._pending += 1
            if self._oldest_pending is None:
                self._oldest_pending = received.at
        metrics.RECEIVED.inc()
        metrics.LAG_MESSAGES.inc()
        if self.session is None:
            self._inbox.put(received)
        else:
            self.session.deliver(received)  # to the inbox, unless the session may be another's

    def _forget(self, n: int) -> None:
        """``n`` held messages were dropped unacknowledged: the broker delivers them again."""
        with self._lag_lock:
            self._pending -= n
            if self._pending == 0:
                self._oldest_pending = None
        metrics.LAG_MESSAGES.dec(n)

    def _lag_seconds(self) -> float:
        with self._lag_lock:
            oldest = self._oldest_pending
        return 0.0 if oldest is None else time.monotonic() - oldest

    def _next_batch(self) -> list[_Received]:
        try:
            batch = [self._inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self._batch_delay_s
        while len(batch) < self._batch_max:
            try:
                batch.append(self._inbox.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        while not self._ready.wait(0.2):
            if self._stopping.is_set():
                return
        while not self._stopping.is_set():
            batch = self._next_batch()
            if batch:
                self._write_until_committed(batch)

    def write_pending(self) -> Counter[str]:
        """Write everything received so far as one batch, on the caller's thread; return its
        outcomes (for a gateway started without its writer thread)."""
        batch: list[_Received] = []
        while True:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return self._write_until_committed(batch) if batch else Counter()

    def _write_until_committed(self, batch: list[_Received]) -> Counter[str]:
        delay = 0.5
        inbound = [r.inbound for r in batch]
        bug: str | None = None  # after a defect, the batch is quarantined instead of stored
        while not self._stopping.is_set():
            reasons: Counter[str] = Counter()
            started = time.monotonic()
            try:
                if bug is None:
                    outcomes = self._write(inbound, reasons)
                else:
                    outcomes = self._quarantine_all(inbound, reasons, bug)
            except psycopg.Error:  # database unreachable (PoolTimeout is one too): hold, retry
                metrics.DB_RETRIES.inc()
                log.exception(
                    "could not store a batch of %d; retrying in %.1f s", len(batch), delay
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            except Exception as exc:  # a defect, not the database: never held as if it were
                if bug is not None:
                    self._note_bug("quarantine")
                    return Counter()  # left unacknowledged: the broker redelivers it
                self._note_bug("write")
                bug = f"gateway bug: {type(exc).__name__}: {exc}"[:300]
                continue
            committed = time.monotonic()
            log.debug("stored batch: %s", dict(outcomes))
            for r in batch:
                self.source.ack(r.mid, r.qos)
            self.processed += len(batch)
            self._note_committed(batch, outcomes, reasons, committed - started, committed)
            return outcomes
        return Counter()

    def _write(self, batch: list[Inbound], reasons: Counter[str]) -> Counter[str]:
        with self._pool.connection(timeout=self._db_timeout_s) as conn:
            return write_batch(conn, batch, reasons)

    def _quarantine_all(
        self, batch: list[Inbound], reasons: Counter[str], reason: str
    ) -> Counter[str]:
        with self._pool.connection(timeout=self._db_timeout_s) as conn, conn.transaction():
            ingest_sql.quarantine_all(conn, batch, reason)
        reasons[reason] += len(batch)
        return Counter({"quarantined": len(batch)})

    def _note_bug(self, where: str) -> None:
        """Log the exception being handled with its traceback, count it, turn unhealthy."""
        log.exception("gateway bug in %s; the gateway now reports itself unhealthy", where)
        self.bugs += 1
        metrics.BUGS.labels(where).inc()
        metrics.HEALTHY.set(0)

    def _note_committed(
        self,
        batch: list[_Received],
        outcomes: Counter[str],
        reasons: Counter[str],
        seconds: float,
        committed: float,
    ) -> None:
        with self._lag_lock:
            self._pending -= len(batch)
            # The inbox is FIFO: the next pending message arrived after this batch's last one.
            self._oldest_pending = None if self._pending == 0 else self._peek_oldest(batch[-1].at)
        metrics.LAG_MESSAGES.dec(len(batch))
        metrics.record_batch(outcomes, reasons, len(batch), seconds)
        for r in batch:
            metrics.RECEIVE_TO_COMMIT.observe(committed - r.at)
        if self.on_committed is not None:
            self.on_committed([r.inbound for r in batch])

    def _peek_oldest(self, fallback: float) -> float:
        with self._inbox.mutex:
            return self._inbox.queue[0].at if self._inbox.queue else fallback
