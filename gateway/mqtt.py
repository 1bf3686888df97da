"""The gateway's MQTT adapter: paho-mqtt in, batches to :mod:`gateway.writer`, acks after commit.

Delivery is at-least-once end to end: a persistent session (stable client id, no clean start)
at QoS 1, and paho's manual acknowledgement — a PUBACK goes out only after the batch holding
the message is committed. If the process dies before that, the broker redelivers, and the
idempotency ledger turns the redelivery into a counted duplicate.

Connecting (MQTT 5 with a large Receive Maximum, else 3.1.1) is :mod:`gateway.connection`'s job;
telling a session taken over by another client with the same id, and yielding to the one that
was there first, :mod:`gateway.session`'s.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.config import MqttUrl
from dosewatch.domain.protocol import TOPIC_ROOT
from gateway import downlink, metrics
from gateway.connection import connect_client
from gateway.session import SETTLE_S, SessionGuard
from gateway.writer import Inbound, write_batch

log = logging.getLogger(__name__)

SUBSCRIPTIONS = (
    f"{TOPIC_ROOT}/+/events",
    f"{TOPIC_ROOT}/+/status",
    f"{TOPIC_ROOT}/+/online",  # retained '1' on connect, Last Will '0': presence
)


def subscriptions(share_group: str | None) -> tuple[str, ...]:
    """The gateway's topic filters; with a group, as MQTT shared subscriptions, so that the
    broker spreads messages over every gateway in the group (each with its own client id and
    session). Correct in any order: storage is idempotent and matching order-independent.
    A shared subscription gets no retained messages, so presence then comes from heartbeats
    and live Last Will messages only."""
    if share_group is None:
        return SUBSCRIPTIONS
    return tuple(f"$share/{share_group}/{topic}" for topic in SUBSCRIPTIONS)


@dataclass(frozen=True)
class _Received:
    inbound: Inbound
    mid: int
    qos: int
    at: float = field(default_factory=time.monotonic)  # arrival, for lag and latency


class Gateway:
    """Receives on paho's thread, writes in batches on its own thread, acks after commit."""

    def __init__(
        self,
        url: MqttUrl,
        pool: ConnectionPool,
        clock: Clock,
        *,
        client_id: str,
        session_expiry_s: int,
        prefer_v5: bool = True,
        batch_max: int = 2000,
        batch_delay_s: float = 0.05,
        db_timeout_s: float = 5.0,
        downlink_interval_s: float | None = 5.0,
        share_group: str | None = None,
        session_settle_s: float = SETTLE_S,
    ) -> None:
        self._subscriptions = subscriptions(share_group)
        self._prefer_v5 = prefer_v5
        self._downlink_interval_s = downlink_interval_s
        self._url, self._pool, self._clock = url, pool, clock
        self._client_id, self._session_expiry_s = client_id, session_expiry_s
        self._batch_max, self._batch_delay_s = batch_max, batch_delay_s
        # How long one attempt waits for a pool connection: while the database is down the pool
        # cannot make one, and the backoff below, not the pool's 30 s default, sets the pace.
        self._db_timeout_s = db_timeout_s
        self._inbox: queue.Queue[_Received] = queue.Queue()
        self._stopping = threading.Event()
        self._ready = threading.Event()  # acks need the client; messages may precede its return
        self._client: mqtt.Client | None = None
        self._thread = threading.Thread(target=self._write_loop, name="gateway-writer", daemon=True)
        self.processed = 0  # messages committed (any outcome); tests wait on it
        self._pending = 0  # received, not yet committed: the consumer lag
        self._oldest_pending: float | None = None
        self._lag_lock = threading.Lock()
        metrics.LAG_SECONDS.set_function(self._lag_seconds)
        self.session: SessionGuard[_Received] = SessionGuard(
            client_id,
            url.redacted(),
            pool,
            clock,
            accept=self._inbox.put,
            on_dropped=self._forget,
            settle_s=session_settle_s,
        )
        # Called with each committed batch's messages, after their acks (benchmarks time it).
        self.on_committed: Callable[[list[Inbound]], None] | None = None

    def start(self) -> None:
        self._thread.start()
        self._client = connect_client(
            self._url,
            self._client_id,
            session_expiry_s=self._session_expiry_s,
            prefer_v5=self._prefer_v5,
            manual_ack=True,
            on_message=self._on_message,
            subscriptions=self._subscriptions,
            session=self.session,
        )
        self._ready.set()
        if self._downlink_interval_s is not None:
            threading.Thread(
                target=self._downlink_loop, name="gateway-downlink", daemon=True
            ).start()

    def _downlink_loop(self) -> None:
        """Publish configs for schedules saved anywhere (see downlink.publish_pending)."""
        assert self._downlink_interval_s is not None and self._client is not None
        while not self._stopping.wait(self._downlink_interval_s):
            if self.session.state == "yielded":  # the broker session is another gateway's
                continue
            try:
                with self._pool.connection(timeout=self._db_timeout_s) as conn:
                    downlink.publish_pending(conn, self._client, self._clock.now())
            except Exception:  # the database or broker is away: the next round tries again
                log.exception("config down-link round failed")

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        with self._lag_lock:  # what it held goes back to the broker, unacknowledged
            metrics.LAG_MESSAGES.dec(self._pending)
            self._pending, self._oldest_pending = 0, None
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        self.session.stop()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        # msg.retain is set only on the broker's stored copy sent because we subscribed; a live
        # message reaches an existing subscription with it cleared (MQTT 3.1.1 and 5 defaults).
        inbound = Inbound(msg.topic, bytes(msg.payload), self._clock.now(), retained=msg.retain)
        received = _Received(inbound, msg.mid, msg.qos)
        with self._lag_lock:
            self._pending += 1
            if self._oldest_pending is None:
                self._oldest_pending = received.at
        metrics.RECEIVED.inc()
        metrics.LAG_MESSAGES.inc()
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

    def _write_until_committed(self, batch: list[_Received]) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            reasons: Counter[str] = Counter()
            started = time.monotonic()
            try:
                with self._pool.connection(timeout=self._db_timeout_s) as conn:
                    outcomes = write_batch(conn, [r.inbound for r in batch], reasons)
            except Exception:  # database down: keep the batch unacknowledged, back off, retry
                metrics.DB_RETRIES.inc()
                log.exception(
                    "could not store a batch of %d; retrying in %.1f s", len(batch), delay
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            committed = time.monotonic()
            log.debug("stored batch: %s", dict(outcomes))
            assert self._client is not None
            for r in batch:
                if r.qos > 0:
                    self._client.ack(r.mid, r.qos)
            self.processed += len(batch)
            self._note_committed(batch, outcomes, reasons, committed - started, committed)
            return

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
