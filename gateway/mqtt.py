"""The gateway's MQTT adapter: paho-mqtt in, batches to :mod:`gateway.writer`, acks after commit.

Delivery is at-least-once end to end: a persistent session (stable client id, no clean start)
at QoS 1, and paho's manual acknowledgement — a PUBACK goes out only after the batch holding
the message is committed. If the process dies before that, the broker redelivers, and the
idempotency ledger turns the redelivery into a counted duplicate.

Connecting (MQTT 5 with a large Receive Maximum, else 3.1.1) is :mod:`gateway.connection`'s job.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.config import MqttUrl
from dosewatch.domain.protocol import TOPIC_ROOT
from gateway.connection import connect_client
from gateway.writer import Inbound, write_batch

log = logging.getLogger(__name__)

SUBSCRIPTIONS = (
    f"{TOPIC_ROOT}/+/events",
    f"{TOPIC_ROOT}/+/status",
    f"{TOPIC_ROOT}/+/online",  # retained '1' on connect, Last Will '0': presence
)


@dataclass(frozen=True)
class _Received:
    inbound: Inbound
    mid: int
    qos: int


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
        batch_max: int = 500,
        batch_delay_s: float = 0.05,
        db_timeout_s: float = 5.0,
    ) -> None:
        self._prefer_v5 = prefer_v5
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

    def start(self) -> None:
        self._thread.start()
        self._client = connect_client(
            self._url,
            self._client_id,
            session_expiry_s=self._session_expiry_s,
            prefer_v5=self._prefer_v5,
            manual_ack=True,
            on_message=self._on_message,
            subscriptions=SUBSCRIPTIONS,
        )
        self._ready.set()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        # msg.retain is set only on the broker's stored copy sent because we subscribed; a live
        # message reaches an existing subscription with it cleared (MQTT 3.1.1 and 5 defaults).
        inbound = Inbound(msg.topic, bytes(msg.payload), self._clock.now(), retained=msg.retain)
        self._inbox.put(_Received(inbound, msg.mid, msg.qos))

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
            try:
                with self._pool.connection(timeout=self._db_timeout_s) as conn:
                    outcomes = write_batch(conn, [r.inbound for r in batch])
            except Exception:  # database down: keep the batch unacknowledged, back off, retry
                log.exception(
                    "could not store a batch of %d; retrying in %.1f s", len(batch), delay
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            log.debug("stored batch: %s", dict(outcomes))
            assert self._client is not None
            for r in batch:
                if r.qos > 0:
                    self._client.ack(r.mid, r.qos)
            self.processed += len(batch)
            return
