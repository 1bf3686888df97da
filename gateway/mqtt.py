"""The gateway's MQTT adapter: paho-mqtt in, batches to :mod:`gateway.writer`, acks after commit.

Delivery is at-least-once end to end: a persistent session (stable client id, no clean start)
at QoS 1, and paho's manual acknowledgement — a PUBACK goes out only after the batch holding
the message is committed. If the process dies before that, the broker redelivers, and the
idempotency ledger turns the redelivery into a counted duplicate.

MQTT 5 is tried first, with a large Receive Maximum so ack-after-commit does not throttle to the
broker's default in-flight window; a broker that only speaks 3.1.1 (the embedded amqtt) gets
3.1.1, and the log says so.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.config import ConfigError, MqttUrl
from dosewatch.domain.protocol import TOPIC_ROOT
from gateway.writer import Inbound, write_batch

log = logging.getLogger(__name__)

SUBSCRIPTIONS = (f"{TOPIC_ROOT}/+/events", f"{TOPIC_ROOT}/+/status")
RECEIVE_MAXIMUM = 10_000
# What a 3.1.1-only broker answers (or how it hangs up) when offered MQTT 5.
_NOT_V5 = {"Unsupported protocol version", "Unspecified error", "Protocol error"}


@dataclass(frozen=True)
class _Received:
    inbound: Inbound
    mid: int
    qos: int


def connect_client(
    url: MqttUrl, client_id: str, *, session_expiry_s: int, clean: bool = False,
    prefer_v5: bool = True, timeout_s: float = 10.0, manual_ack: bool = False,
    on_message: mqtt.CallbackOnMessage | None = None, subscriptions: tuple[str, ...] = (),
) -> mqtt.Client:
    """Connect (MQTT 5, else 3.1.1), start paho's network thread, and return the client.

    Raises :class:`ConfigError` with one readable line when the broker cannot be used. After the
    first successful connect, paho reconnects by itself when the connection drops.
    """
    for protocol in ((mqtt.MQTTv5, mqtt.MQTTv311) if prefer_v5 else (mqtt.MQTTv311,)):
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if protocol == mqtt.MQTTv5 else clean,
            manual_ack=manual_ack,
        )
        if url.username:
            client.username_pw_set(url.username, url.password)
        if url.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if on_message is not None:
            client.on_message = on_message
        result: dict[str, ReasonCode] = {}
        ready = threading.Event()

        def on_connect(c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
            result["rc"] = rc
            ready.set()
            if not rc.is_failure:
                for topic in subscriptions:
                    c.subscribe(topic, qos=1)

        def on_disconnect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
            if not ready.is_set():  # closed before any CONNACK: treat as a refusal of this version
                result.setdefault("rc", rc)
                ready.set()
            elif not result["rc"].is_failure:
                log.warning("MQTT connection lost (%s); reconnecting", rc)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        props = None
        if protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if clean else session_expiry_s
            props.ReceiveMaximum = RECEIVE_MAXIMUM
        try:
            client.connect(url.host, url.port, keepalive=30, clean_start=clean if protocol == mqtt.MQTTv5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props)
        except OSError as exc:
            raise ConfigError(
                f"cannot reach the MQTT broker at {url.redacted()} ({exc.strerror or exc}); "
                "start it or fix DOSEWATCH_MQTT_URL (unset it to use the embedded broker)"
            ) from None
        client.loop_start()
        answered = ready.wait(timeout_s)
        rc = result.get("rc")
        if answered and rc is not None and not rc.is_failure:
            name = "5" if protocol == mqtt.MQTTv5 else "3.1.1"
            log.info("MQTT %s connected to %s as %s", name, url.redacted(), client_id)
            return client
        client.disconnect()
        client.loop_stop()
        if protocol == mqtt.MQTTv5 and (rc is None or rc.getName() in _NOT_V5):
            log.warning("broker %s does not speak MQTT 5 (%s); falling back to 3.1.1 (fine for a "
                        "demo, not for a fleet: the in-flight window is the broker's default)",
                        url.redacted(), rc or "no answer")
            continue
        if rc is None:
            raise ConfigError(f"the MQTT broker at {url.redacted()} did not answer CONNECT in "
                              f"{timeout_s:.0f} s; check DOSEWATCH_MQTT_URL")
        raise ConfigError(f"the MQTT broker at {url.redacted()} refused the connection: {rc}; "
                          "check the user and password in DOSEWATCH_MQTT_URL")
    raise ConfigError(f"no MQTT protocol version accepted by {url.redacted()}")


class Gateway:
    """Receives on paho's thread, writes in batches on its own thread, acks after commit."""

    def __init__(
        self, url: MqttUrl, pool: ConnectionPool, clock: Clock, *, client_id: str,
        session_expiry_s: int, prefer_v5: bool = True, batch_max: int = 500,
        batch_delay_s: float = 0.05,
    ) -> None:
        self._prefer_v5 = prefer_v5
        self._url, self._pool, self._clock = url, pool, clock
        self._client_id, self._session_expiry_s = client_id, session_expiry_s
        self._batch_max, self._batch_delay_s = batch_max, batch_delay_s
        self._inbox: queue.Queue[_Received] = queue.Queue()
        self._stopping = threading.Event()
        self._ready = threading.Event()  # acks need the client; messages may precede its return
        self._client: mqtt.Client | None = None
        self._thread = threading.Thread(target=self._write_loop, name="gateway-writer", daemon=True)
        self.processed = 0  # messages committed (any outcome); tests wait on it

    def start(self) -> None:
        self._thread.start()
        self._client = connect_client(
            self._url, self._client_id, session_expiry_s=self._session_expiry_s,
            prefer_v5=self._prefer_v5, manual_ack=True, on_message=self._on_message, subscriptions=SUBSCRIPTIONS,
        )
        self._ready.set()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        inbound = Inbound(msg.topic, bytes(msg.payload), self._clock.now())
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
                with self._pool.connection() as conn:
                    outcomes = write_batch(conn, [r.inbound for r in batch])
            except Exception:  # database down: keep the batch unacknowledged, back off, retry
                log.exception("could not store a batch of %d; retrying in %.1f s", len(batch), delay)
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
