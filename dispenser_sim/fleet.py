"""A small fleet of virtual dispensers on the wall clock, for ``dosewatch demo``.

Each dispenser connects as itself (client id = its id, Last Will ``0`` on its ``online`` topic),
and at each due time presents the dose and then, according to its behaviour, reports it taken
on time, taken late, or not at all.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt

from dispenser_sim.messages import event
from dosewatch.config import MqttUrl
from dosewatch.domain.protocol import TOPIC_ROOT

log = logging.getLogger(__name__)


@dataclass
class VirtualDispenser:
    id: str
    due_times: list[datetime]
    take_after: timedelta | None  # None: the patient never takes the dose
    doses_left: int = 28
    seq: int = 0
    _done: set[tuple[str, datetime]] = field(default_factory=set)

    def actions(self, now: datetime) -> list[tuple[str, bytes]]:
        """What to publish at ``now`` (pure: the thread below only calls and publishes)."""
        out: list[tuple[str, bytes]] = []
        for due in self.due_times:
            if due <= now and ("presented", due) not in self._done:
                self._done.add(("presented", due))
                out.append(self._event("dose_presented", now, due))
            if (
                self.take_after is not None
                and due + self.take_after <= now
                and ("taken", due) not in self._done
            ):
                self._done.add(("taken", due))
                self.doses_left -= 1
                out.append(self._event("dose_taken", now, due, doses_left=self.doses_left))
        return out

    def _event(
        self, kind: str, now: datetime, due: datetime, doses_left: int | None = None
    ) -> tuple[str, bytes]:
        self.seq += 1
        topic = f"{TOPIC_ROOT}/{self.id}/events"
        return topic, event(self.id, self.seq, kind, now, dose_due_at=due, doses_left=doses_left)


class Fleet:
    def __init__(self, url: MqttUrl, dispensers: list[VirtualDispenser]) -> None:
        self._url, self._dispensers = url, dispensers
        self._stop = threading.Event()
        self._clients: dict[str, mqtt.Client] = {}
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)

    def start(self) -> None:
        for d in self._dispensers:
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=d.id)
            if self._url.username:
                c.username_pw_set(self._url.username, self._url.password)
            online = f"{TOPIC_ROOT}/{d.id}/online"
            c.will_set(online, b"0", qos=1, retain=True)
            c.connect(self._url.host, self._url.port)
            c.loop_start()
            c.publish(online, b"1", qos=1, retain=True)
            self._clients[d.id] = c
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for c in self._clients.values():
            c.disconnect()
            c.loop_stop()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            now = datetime.now(UTC)
            for d in self._dispensers:
                for topic, payload in d.actions(now):
                    self._clients[d.id].publish(topic, payload, qos=1)
                    log.info("%s: %s", d.id, json.loads(payload)["type"])
