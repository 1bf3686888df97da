"""Ten thousand virtual dispensers in one process: paho's external-loop API on one asyncio loop.

:mod:`service.sim_live` gives each dispenser a paho network thread, which is right for tens to
hundreds. Here every dispenser is still its own paho client and its own TCP connection (client
id = username = its id, its own password, Last Will ``0`` retained on ``…/online``, ``1`` there
on connect, subscribed to its retained ``…/config``), but no client has a thread: paho tells us
when its socket opens and when it has bytes to write (``on_socket_*``), and the asyncio loop
calls ``loop_read``/``loop_write`` when the socket is ready, ``loop_misc`` every few seconds for
the keep-alive. One thread, one selector, 10,000 sockets.

Why paho and not aiomqtt or gmqtt: paho is the client the gateway and ``sim run`` already use
(maintained by the Eclipse Foundation, MQTT 3.1.1 and 5), so a bench device speaks MQTT
exactly as the simulator's devices do and the project needs no new dependency. aiomqtt is an
asyncio wrapper around this same paho external loop, plus a task per client; gmqtt is a second
MQTT implementation with its own behaviour to trust.

The devices act the 08:00 rush (:class:`Rush`): each follows the config it was *sent*, like
firmware (:class:`~dispenser_sim.device.SimDevice` builds every message), presents the dose at
its due time, and the patient takes it at a time drawn over the window or, for the chosen few,
never (the device reports ``dose_not_taken`` when its window closes). What each device really
did is written into a :class:`~dispenser_sim.truth.Truth` as it happens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from dispenser_sim.device import DeviceConfig, Happening, Outgoing, SimDevice
from dispenser_sim.profiles import DispenserSpec, Profile
from dispenser_sim.truth import DoseTruth, Truth
from dosewatch.domain.protocol import TOPIC_ROOT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rush:
    miss: float = 0.005  # share of patients who never take the dose
    take_margin_s: float = 15.0  # the last take this long before the window closes
    heartbeat_s: float = 300.0  # a status every 5 minutes, each device at its own phase
    tail_s: float = 10.0  # stay connected this long after the last window closed
    connect_in_flight: int = 200  # connections waiting for CONNACK at once (the listen backlog)
    ready_timeout_s: float = 300.0  # every device connected and configured, or give up
    seed: int = 1


@dataclass
class _Device:
    sim: SimDevice
    client: mqtt.Client
    connected: bool = False
    config_at: float | None = None
    dose: DoseTruth | None = None
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


@dataclass
class Published:
    dispenser_id: str
    event_id: str | None  # None for status and online
    type: str
    at: float  # time.time() when handed to the socket


class CrowdError(RuntimeError):
    pass


class Crowd:
    """The devices, their truth, and every message they published (for the lag)."""

    def __init__(
        self, host: str, port: int, credentials: dict[str, str], rush: Rush, run_id: str
    ) -> None:
        self.host, self.port, self.rush = host, port, rush
        self.credentials = credentials
        ids = sorted(credentials)
        start = datetime.now(UTC).replace(microsecond=0)
        self.truth = Truth(run_id, "bench-rush", rush.seed, start)
        self.truth.dispensers = ids
        draw = random.Random(f"{rush.seed}/rush")
        self.missing = set(draw.sample(ids, round(len(ids) * rush.miss)))
        self.devices: dict[str, _Device] = {}
        self.published: list[Published] = []
        self.acked = 0
        self.dropped: list[str] = []  # devices the broker disconnected before the end
        self.refused: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(rush.connect_in_flight)
        self._ending = False

    # -- paho's external loop on asyncio -----------------------------------------------------

    def _hook(self, c: mqtt.Client) -> None:
        loop = self._loop
        assert loop is not None

        def opened(client: mqtt.Client, _u: Any, sock: Any) -> None:
            loop.add_reader(sock, client.loop_read)

        def closed(_c: mqtt.Client, _u: Any, sock: Any) -> None:
            loop.remove_reader(sock)
            loop.remove_writer(sock)

        def want_write(client: mqtt.Client, _u: Any, sock: Any) -> None:
            loop.add_writer(sock, client.loop_write)

        def done_write(_c: mqtt.Client, _u: Any, sock: Any) -> None:
            loop.remove_writer(sock)

        c.on_socket_open, c.on_socket_close = opened, closed
        c.on_socket_register_write, c.on_socket_unregister_write = want_write, done_write

    async def _misc(self) -> None:
        """Keep-alive (PINGREQ) for every connected device, from the first connect on: on a
        busy machine connecting 10,000 takes longer than the broker's 1.5 × keep-alive."""
        while True:
            for d in list(self.devices.values()):
                d.client.loop_misc()
            await asyncio.sleep(5)

    # -- devices -----------------------------------------------------------------------------

    def _device(self, dispenser_id: str) -> _Device:
        spec = DispenserSpec(dispenser_id, "bench", Profile(), "rush", (), None, dispenser_id)
        sim = SimDevice(spec, self.rush.seed, self.truth.start, doses_left=28)
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=dispenser_id,
            userdata=dispenser_id,
            protocol=mqtt.MQTTv311,
        )
        c.username_pw_set(dispenser_id, self.credentials[dispenser_id])
        c.will_set(f"{TOPIC_ROOT}/{dispenser_id}/online", b"0", qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        self._hook(c)
        return _Device(sim, c)

    def _on_connect(self, c: mqtt.Client, d_id: str, _f: Any, rc: Any, _p: Any) -> None:
        self._slots.release()
        if rc.is_failure:
            self.refused.append(f"{d_id}: {rc}")
            return
        d = self.devices[d_id]
        d.connected = True
        c.subscribe(f"{TOPIC_ROOT}/{d_id}/config", qos=1)
        self._send(d, Outgoing(f"{TOPIC_ROOT}/{d_id}/online", b"1", True, "online"))
        self._send(d, d.sim.status(datetime.now(UTC)))
        assert self._loop is not None
        phase = random.Random(f"{self.rush.seed}/{d_id}/beat").uniform(0, self.rush.heartbeat_s)
        d.timers.append(self._loop.call_later(phase, self._beat, d))

    def _on_disconnect(self, _c: mqtt.Client, d_id: str, _f: Any, rc: Any, _p: Any) -> None:
        if not self._ending:
            self.dropped.append(f"{d_id}: {rc}")
        self.devices[d_id].connected = False

    def _on_publish(self, *_: Any) -> None:
        self.acked += 1

    def _on_message(self, _c: mqtt.Client, d_id: str, msg: mqtt.MQTTMessage) -> None:
        config = DeviceConfig.parse(bytes(msg.payload))
        d = self.devices[d_id]
        if config is None:
            log.warning("%s: a config it cannot read: %r", d_id, msg.payload[:100])
            return
        now = datetime.now(UTC)
        for out in d.sim.apply_config(now, config):
            self._send(d, out)
        if d.config_at is None:
            d.config_at = time.time()
        self._plan(d, now)

    def _plan(self, d: _Device, now: datetime) -> None:
        """The next dose of the config: presented, then taken at a drawn time or withdrawn."""
        assert d.sim.config is not None and self._loop is not None
        slots = d.sim.config.slots(now, now + timedelta(days=1))
        if not slots or d.dose is not None:
            return
        due, wend = slots[0]
        i = d.sim.id
        missed = i in self.missing
        d.dose = DoseTruth(i, due, wend, "missed" if missed else "taken")
        self.truth.doses[Truth.key(i, due)] = d.dose
        r = random.Random(f"{self.rush.seed}/{i}/take")
        last = max(1.0, (wend - due).total_seconds() - self.rush.take_margin_s)
        taken = due + timedelta(seconds=r.uniform(1, last))
        act = [(due, "present"), (wend, "not_taken") if missed else (taken, "take")]
        for at, kind in act:
            h = Happening(at, i, kind, due, wend)
            delay = (at - datetime.now(UTC)).total_seconds()
            d.timers.append(self._loop.call_later(max(0.0, delay), self._act, d, h))

    def _act(self, d: _Device, h: Happening) -> None:
        now = datetime.now(UTC)
        h = Happening(now, h.dispenser_id, h.kind, h.due, h.window_end)
        for out in d.sim.act(h):
            self._send(d, out)
            if out.type in ("dose_taken", "dose_not_taken") and d.dose is not None:
                d.dose.deliveries.append((out.type, now))
                if out.type == "dose_taken":
                    d.dose.taken_at = now

    def _beat(self, d: _Device) -> None:
        if d.connected:
            self._send(d, d.sim.status(datetime.now(UTC)))
        assert self._loop is not None
        d.timers.append(self._loop.call_later(self.rush.heartbeat_s, self._beat, d))

    def _send(self, d: _Device, out: Outgoing) -> None:
        info = d.client.publish(out.topic, out.payload, qos=1, retain=out.retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise CrowdError(f"{d.sim.id}: publish refused: {mqtt.error_string(info.rc)}")
        now = time.time()
        event_id = None
        if out.type not in ("status", "online"):
            event_id = json.loads(out.payload)["event_id"]
        elif out.type == "status":
            self.truth.samples.setdefault(d.sim.id, []).append((datetime.now(UTC), 100, True, 21.0))
        self.published.append(Published(d.sim.id, event_id, out.type, now))

    # -- the run -----------------------------------------------------------------------------

    async def connect_all(self) -> tuple[float, float]:
        """Connect every device and wait until each has its config; return the seconds until
        every one was connected, and until every one had its config."""
        self._loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        self._misc_task = asyncio.create_task(self._misc())
        for d_id in self.truth.dispensers:
            try:  # a CONNACK that never comes must not hang the run
                await asyncio.wait_for(self._slots.acquire(), timeout=60)
            except TimeoutError:
                raise CrowdError("no CONNACK for 60 s") from None
            d = self.devices[d_id] = self._device(d_id)
            try:
                d.client.connect(self.host, self.port, keepalive=60)
            except OSError as exc:
                raise CrowdError(f"{d_id}: cannot connect: {exc}") from None
        deadline = t0 + self.rush.ready_timeout_s
        connected: float | None = None
        while time.monotonic() < deadline:
            if self.refused or self.dropped:
                raise CrowdError(f"refused {self.refused[:3]}, dropped {self.dropped[:3]}")
            if connected is None and all(d.connected for d in self.devices.values()):
                connected = time.monotonic() - t0
            if connected is not None and all(d.dose is not None for d in self.devices.values()):
                return connected, time.monotonic() - t0
            await asyncio.sleep(0.2)
        waiting = [i for i, d in self.devices.items() if d.dose is None]
        raise CrowdError(f"{len(waiting)} devices without a dose planned, e.g. {waiting[:3]}")

    def last_close(self) -> datetime:
        return max(d.dose.window_end for d in self.devices.values() if d.dose is not None)

    async def run_rush(self) -> None:
        """Wait for the last window to close (plus the tail), then disconnect every device."""
        end = self.last_close() + timedelta(seconds=self.rush.tail_s)
        await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()))
        for _ in range(100):  # the broker owns every message once it has acknowledged it
            if self.acked >= len(self.published):
                break
            await asyncio.sleep(0.1)
        self._ending = True
        for d in self.devices.values():
            for t in d.timers:
                t.cancel()
            d.client.disconnect()
        self._misc_task.cancel()
        await asyncio.sleep(1.0)  # let the DISCONNECTs leave
        self.truth.end = datetime.now(UTC)
