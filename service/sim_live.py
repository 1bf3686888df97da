"""Live transport: each virtual dispenser is its own paho MQTT client through a real broker.

Exactly what firmware does (docs/protocol.md): client id = username = its dispenser id with
its own password when the broker wants one; Last Will retained ``0`` on ``…/online`` and
retained ``1`` there on every connect; subscribed to its own retained ``…/config``; events at
QoS 1, the status retained. A network cut drops the TCP connection without a DISCONNECT, so
the broker publishes the Last Will, as it would for a dispenser whose line went dead.

One paho network thread per dispenser (``loop_start``): simple and right for the demo, tests
and drills (tens to hundreds of dispensers). Ten thousand connections need the external-loop
API in one event loop instead (see ``bench/fleet.py``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt

from dispenser_sim.device import Outgoing
from dosewatch.config import MqttUrl
from dosewatch.domain.protocol import TOPIC_ROOT

if TYPE_CHECKING:
    from dispenser_sim.profiles import Fleet
    from dosewatch.config import Settings

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    pass


class MqttTransport:
    def __init__(
        self,
        url: MqttUrl,
        credentials: dict[str, str] | None = None,
        *,
        stored: Callable[[int], None] | None = None,
        config_wait_s: float = 10.0,
    ) -> None:
        """``stored(n)``, when given, blocks until the service has stored ``n`` more messages
        (a test's gateway counter): settling then means stored, not just accepted."""
        self.url, self.credentials = url, credentials or {}
        self.stored, self.config_wait_s = stored, config_wait_s
        self.clients: dict[str, mqtt.Client] = {}
        self._infos: list[mqtt.MQTTMessageInfo] = []
        self._count = 0  # messages the service will see since the last settle
        self._lock = threading.Lock()
        self._configs: dict[str, bytes] = {}
        self._seen_config: set[str] = set()
        self.reconnects = 0  # paho's own reconnects (after a broker restart)

    def _on_message(self, _c: mqtt.Client, device_id: str, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._configs[device_id] = bytes(msg.payload)
            self._seen_config.add(device_id)

    def connect(self, device_id: str, now: datetime) -> None:
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=device_id,
            userdata=device_id,
            protocol=mqtt.MQTTv311,
        )
        password = self.credentials.get(device_id)
        if password is not None:
            c.username_pw_set(device_id, password)
        elif self.url.username:  # an anonymous test broker: the URL's user, if any
            c.username_pw_set(self.url.username, self.url.password)
        online = f"{TOPIC_ROOT}/{device_id}/online"
        c.will_set(online, b"0", qos=1, retain=True)
        c.on_message = self._on_message
        connected = threading.Event()

        def on_connect(client: mqtt.Client, *_: object) -> None:
            # Every connect, the first and paho's own reconnects (a broker restart): resubscribe
            # (clean session) and say "online" again, as firmware does.
            with self._lock:
                self.reconnects += connected.is_set()
            client.subscribe(f"{TOPIC_ROOT}/{device_id}/config", qos=1)
            self._publish(client, online, b"1", retain=True)
            connected.set()

        c.on_connect = on_connect
        with self._lock:
            self._seen_config.discard(device_id)
        try:
            c.connect(self.url.host, self.url.port, keepalive=60)
        except OSError as exc:
            raise BrokerUnavailable(f"{device_id}: cannot reach the broker: {exc}") from None
        c.reconnect_delay_set(1, 5)
        c.loop_start()
        if not connected.wait(10):
            c.loop_stop()
            raise BrokerUnavailable(f"{device_id}: no CONNACK from the broker")
        self.clients[device_id] = c
        self._wait_config(device_id)

    def _wait_config(self, device_id: str) -> None:
        # A retained config arrives right after SUBACK when there is one; a dispenser without
        # a schedule yet simply has none (then it waits for the first, like firmware).
        deadline = time.monotonic() + self.config_wait_s
        while time.monotonic() < deadline:
            with self._lock:
                if device_id in self._seen_config:
                    return
            time.sleep(0.01)
        log.info("%s: no retained config yet", device_id)

    def cut(self, device_id: str, now: datetime) -> None:
        c = self.clients.pop(device_id, None)
        if c is None:
            return
        c.loop_stop()
        sock = c.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # no DISCONNECT: the broker sends the Will
            sock.close()
        with self._lock:
            self._count += 1  # the Last Will reaches the service too

    def send(self, device_id: str, out: Outgoing, now: datetime) -> None:
        c = self.clients.get(device_id)
        if c is None:
            raise BrokerUnavailable(f"{device_id} is not connected")
        self._publish(c, out.topic, out.payload, retain=out.retain)

    def _publish(self, c: mqtt.Client, topic: str, payload: bytes, retain: bool) -> None:
        info = c.publish(topic, payload, qos=1, retain=retain)
        with self._lock:
            self._infos.append(info)
            self._count += 1

    def settle(self, now: datetime) -> None:
        with self._lock:
            infos, self._infos = self._infos, []
            count, self._count = self._count, 0
        for info in infos:
            info.wait_for_publish(timeout=30)
            if not info.is_published():
                raise BrokerUnavailable("the broker did not acknowledge a message in 30 s")
        if self.stored is not None and count:
            self.stored(count)

    def configs(self) -> dict[str, bytes]:
        with self._lock:
            fresh, self._configs = self._configs, {}
        return fresh

    def close(self) -> None:
        for c in self.clients.values():
            c.disconnect()
            c.loop_stop()
        self.clients.clear()


class WallTicker:
    """Real time: wait until ``t`` on the system clock (a live run)."""

    def wait_until(self, t: datetime) -> None:
        delay = (t - datetime.now(UTC)).total_seconds()
        if delay > 0:
            time.sleep(delay)


def run_live(
    settings: Settings,
    fleet: Fleet,
    duration: timedelta,
    truth_path: Path,
    credentials: dict[str, str] | None,
) -> None:
    """``dosewatch sim run``: the fleet on the wall clock against the configured service.

    The fleet is entered through the API (in process, over the configured database) unless
    its dispensers exist already (after ``sim history``); the running gateway publishes their
    configs, which the devices read on connect.
    """
    import uuid

    from fastapi.testclient import TestClient

    from dashboards.app import create_app
    from dispenser_sim.engine import Engine
    from dispenser_sim.staff import Api, ApiStaff, set_up_fleet
    from dispenser_sim.truth import Truth
    from dosewatch.clock import SystemClock
    from dosewatch.config import ConfigError
    from dosewatch.db import users as user_sql
    from service.runtime import runtime

    if settings.mqtt is None:
        raise ConfigError("sim run needs DOSEWATCH_MQTT_URL (the broker the service listens on)")
    with runtime(settings, need_mqtt=False) as rt:
        start = datetime.now(UTC).replace(second=0, microsecond=0)
        with rt.pool.connection() as conn, conn.transaction():
            _, secret = user_sql.create_token(
                conn, name="dispenser_sim live", role="admin", team_id=None, now=start
            )
        app = create_app(rt.pool, SystemClock(), default_timezone=fleet.timezone)
        with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as http:
            api = Api(http)
            known = {d["id"] for d in api.get("/api/v1/console/dispensers")}
            if not any(d.id in known for d in fleet.dispensers):
                set_up_fleet(api, fleet, start, uuid.uuid4().hex[:8])
            truth = Truth(uuid.uuid4().hex[:8], fleet.name, fleet.seed, start)
            transport = MqttTransport(settings.mqtt, credentials)
            engine = Engine(
                fleet, transport, WallTicker(), truth, staff=ApiStaff(api, nurse_after=None)
            )
            try:
                engine.start()
                engine.run_until(start + duration)
            except KeyboardInterrupt:
                truth.end = engine.now
            finally:
                transport.close()
                truth.save(truth_path)
                log.info("live run: %d messages; truth in %s", engine.sent, truth_path)
