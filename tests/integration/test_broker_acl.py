"""The shipped broker configuration (deploy/mosquitto) on a real Mosquitto: per-device passwords
made by `dosewatch dispenser provision`, and the topic ACL. One dispenser cannot publish as
another, nor read another's config; the gateway user reads everything and writes config."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode
from typer.testing import CliRunner

from dispenser_sim.broker import ProjectBroker, mosquitto_binary
from dosewatch.broker_credentials import check_password
from service.cli import app

pytestmark = pytest.mark.skipif(
    mosquitto_binary() is None,
    reason="the mosquitto binary is not installed (.ci/run installs it; apt install mosquitto)",
)
ROOT = "dosewatch/v1/dispensers"


def provision(password_file: Path, dispenser_id: str) -> str:
    result = CliRunner().invoke(
        app, ["dispenser", "provision", dispenser_id, "--password-file", str(password_file)]
    )
    assert result.exit_code == 0, result.output
    match = re.search(r"password \(shown once.*\): ([0-9a-f]{32})", result.output)
    assert match, result.output
    return match.group(1)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectBroker]:
    work = tmp_path_factory.mktemp("mosquitto-acl")
    passwords = work / "passwords"
    users = {"gateway": "gateway-secret"}
    for d in ("DSP-A", "DSP-B"):
        users[d] = provision(passwords, d)
    from dosewatch.broker_credentials import set_user

    set_user(passwords, "gateway", users["gateway"])
    with ProjectBroker(work, users) as b:
        yield b


class Client:
    """A paho MQTT 5 client that records what it receives and the broker's answers."""

    def __init__(self, broker: ProjectBroker, user: str, password: str | None = None) -> None:
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.acks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.connack: ReasonCode | None = None
        self._event = threading.Condition()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, password if password is not None else broker.users[user])
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda _c, _u, m: self.inbox.put((m.topic, bytes(m.payload)))
        self.c.on_publish = self._on_publish
        self.c.on_subscribe = self._on_subscribe
        self.c.connect("127.0.0.1", broker.port)
        self.c.loop_start()
        self._wait(lambda: self.connack is not None)

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        with self._event:
            self.connack = rc
            self._event.notify_all()

    def _on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        with self._event:
            self.acks[mid] = rc
            self._event.notify_all()

    def _on_subscribe(
        self, _c: object, _u: object, mid: int, rcs: list[ReasonCode], _p: object
    ) -> None:
        with self._event:
            self.subacks[mid] = rcs
            self._event.notify_all()

    def _wait(self, predicate: object, timeout: float = 10) -> None:
        with self._event:
            assert self._event.wait_for(predicate, timeout), "no answer from the broker"  # type: ignore[arg-type]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> ReasonCode:
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        self._wait(lambda: info.mid in self.acks)
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> ReasonCode:
        _, mid = self.c.subscribe(topic, qos=1)
        assert mid is not None
        self._wait(lambda: mid in self.subacks)
        return self.subacks[mid][0]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_provision_writes_a_mosquitto_pbkdf2_sha512_line(broker: ProjectBroker) -> None:
    lines = (broker.workdir / "passwords").read_text().splitlines()
    entry = next(ln for ln in lines if ln.startswith("DSP-A:"))
    hashed = entry.split(":", 1)[1]
    assert re.fullmatch(r"\$7\$101\$[A-Za-z0-9+/=]{16}\$[A-Za-z0-9+/=]{88}", hashed)
    assert check_password(broker.users["DSP-A"], hashed)
    assert (broker.workdir / "passwords").stat().st_mode & 0o077 == 0


def test_a_dispenser_cannot_publish_as_another(broker: ProjectBroker) -> None:
    gateway = Client(broker, "gateway")
    a = Client(broker, "DSP-A")
    try:
        assert not gateway.subscribe(f"{ROOT}/+/events").is_failure
        spoof = a.publish(f"{ROOT}/DSP-B/events", b'{"spoof": true}')
        own = a.publish(f"{ROOT}/DSP-A/events", b'{"own": true}')
        assert spoof.getName() == "Not authorized"
        assert not own.is_failure
        # The broker keeps one publisher's order: once the second arrived, the first never will.
        assert gateway.inbox.get(timeout=10) == (f"{ROOT}/DSP-A/events", b'{"own": true}')
        assert gateway.inbox.empty()
        # Nor outside the protocol's topics, nor the server's config topic.
        assert a.publish("dosewatch/v1/other", b"x").getName() == "Not authorized"
        assert a.publish(f"{ROOT}/DSP-A/config", b"{}").getName() == "Not authorized"
    finally:
        a.close()
        gateway.close()


def test_a_dispenser_reads_only_its_own_config(broker: ProjectBroker) -> None:
    gateway = Client(broker, "gateway")
    a, b = Client(broker, "DSP-A"), Client(broker, "DSP-B")
    try:
        assert not gateway.publish(f"{ROOT}/DSP-B/config", b'{"version": 9}', True).is_failure
        # Mosquitto 2 grants a SUBSCRIBE and applies the `read` rules to every message it would
        # deliver, so what counts is what arrives.
        a.subscribe(f"{ROOT}/DSP-B/config")
        a.subscribe(f"{ROOT}/+/events")
        assert not a.subscribe(f"{ROOT}/DSP-A/config").is_failure
        assert not b.publish(f"{ROOT}/DSP-B/events", b'{"b": 1}').is_failure
        assert not gateway.publish(f"{ROOT}/DSP-A/config", b'{"version": 1}', True).is_failure
        assert a.inbox.get(timeout=10) == (f"{ROOT}/DSP-A/config", b'{"version": 1}')
        assert a.inbox.empty()  # neither B's retained config nor B's event
        # The gateway may write config but not pose as a device.
        assert gateway.publish(f"{ROOT}/DSP-A/events", b"{}").getName() == "Not authorized"
    finally:
        for t in ("DSP-A", "DSP-B"):
            gateway.publish(f"{ROOT}/{t}/config", b"", True)
        for c in (a, b, gateway):
            c.close()


def test_wrong_password_and_anonymous_are_refused(broker: ProjectBroker) -> None:
    bad = Client(broker, "DSP-A", password="not-the-password")
    try:
        assert bad.connack is not None and bad.connack.is_failure
    finally:
        bad.close()
    # Another dispenser's password does not open this one.
    swapped = Client(broker, "DSP-A", password=broker.users["DSP-B"])
    try:
        assert swapped.connack is not None and swapped.connack.is_failure
    finally:
        swapped.close()
