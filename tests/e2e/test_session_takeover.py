"""Two gateways on one broker: the same client id never makes them fight over the session.

Each gateway is a real ``dosewatch gateway`` process with a database of its own, on a Mosquitto
of the test's own. With the same ``DOSEWATCH_MQTT_CLIENT_ID`` (two installations misconfigured
alike), the one that was there first keeps the session and stores every event sent to it; the
newcomer says so in one ERROR line naming the setting, in its metrics and in its installation's
``/api/v1/health``, and backs off. With default settings two installations get different ids,
and an installation restarted gets its own again.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dispenser_sim.messages import event
from dosewatch.clock import SystemClock
from dosewatch.config import parse_mqtt_url
from dosewatch.db.migrate import migrate
from dosewatch.db.pool import make_pool
from gateway.session import SETTLE_S, YIELD_FIRST_S
from service.embedded import free_port
from tests import servers
from tests.brokers import own_mosquitto
from tests.conftest import connected_client, wait_for
from tests.helpers import add_dispenser

SHARED_ID = "dosewatch-gateway"  # the old default both installations kept


class GatewayProcess:
    """``dosewatch gateway`` in a child process, its output collected line by line."""

    def __init__(self, database_url: str, broker: str, protocol: str, client_id: str | None):
        self.metrics_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOSEWATCH_")}
        env.update(
            DOSEWATCH_DATABASE_URL=database_url,
            DOSEWATCH_MQTT_URL=broker,
            DOSEWATCH_MQTT_PROTOCOL=protocol,
            DOSEWATCH_MQTT_SESSION_EXPIRY_S="300",
            DOSEWATCH_GATEWAY_METRICS_PORT=str(self.metrics_port),
        )
        if client_id is not None:
            env["DOSEWATCH_MQTT_CLIENT_ID"] = client_id
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "gateway"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        try:
            found = wait_for(
                lambda: next((m for ln in self.lines if (m := re.search(pattern, ln))), None),
                timeout=timeout,
                what=f"{pattern!r} in the gateway's output",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it wrote:\n{self.output()}") from None
        assert isinstance(found, re.Match)
        return found

    def metric(self, name: str) -> float | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/", timeout=5) as r:
            text = r.read().decode()
        m = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE)
        return float(m.group(1)) if m else None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(timeout=10)


@pytest.fixture
def broker() -> Iterator[str]:
    with own_mosquitto() as url:
        yield url


@pytest.fixture
def other_installation() -> Iterator[ConnectionPool]:
    """A second installation: its own database, migrated, with no dispensers at all."""
    with servers.postgres_server() as (admin, _), servers.private_database(admin) as url:
        migrate(url)
        pool = make_pool(url, max_size=4, name="other-installation")
        try:
            yield pool
        finally:
            pool.close()


def url_of(pool: ConnectionPool) -> str:
    return str(pool.conninfo)


def session_row(pool: ConnectionPool, client_id: str) -> dict[str, Any] | None:
    with pool.connection() as conn:
        row: Any = conn.execute(
            "SELECT * FROM gateway_sessions WHERE client_id = %s", (client_id,)
        ).fetchone()
    return row


def count(pool: ConnectionPool, table: str) -> int:
    with pool.connection() as conn:
        row: Any = conn.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
    assert row is not None
    return int(row["n"])


def health(pool: ConnectionPool) -> tuple[int, dict[str, Any]]:
    with TestClient(create_app(pool, SystemClock())) as api:
        r = api.get("/api/v1/health")
    return r.status_code, r.json()


class Publisher:
    """Sends A's dispensers' events all through the test, one every 50 ms, QoS 1."""

    def __init__(self, broker: str, dispensers: list[str]) -> None:
        self._client = connected_client(parse_mqtt_url(broker), prefix="takeover-pub")
        self._dispensers = dispensers
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        while not self._stop.wait(0.05):
            seq += 1
            dispenser = self._dispensers[seq % len(self._dispensers)]
            at = datetime.now(UTC)
            info = self._client.publish(
                f"dosewatch/v1/dispensers/{dispenser}/events",
                event(dispenser, seq, "dose_presented", at),
                qos=1,
            )
            info.wait_for_publish(timeout=10)
            self.sent += 1

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=15)
        self._client.disconnect()
        self._client.loop_stop()
        return self.sent


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_the_gateway_that_was_there_first_keeps_its_session(
    pool: ConnectionPool, other_installation: ConnectionPool, broker: str, protocol: str
) -> None:
    now = datetime.now(UTC)
    dispensers = ["DSP-FIRST-1", "DSP-FIRST-2"]
    for d in dispensers:
        add_dispenser(pool, d, now - timedelta(hours=1))
    first = GatewayProcess(url_of(pool), broker, protocol, SHARED_ID)
    second: GatewayProcess | None = None
    publisher: Publisher | None = None
    try:
        first.wait_for_line(rf"MQTT {re.escape(protocol)} connected .* as {SHARED_ID}")

        wait_for(lambda: held(pool, SHARED_ID), what="the first gateway to hold its session")
        publisher = Publisher(broker, dispensers)
        wait_for(lambda: count(pool, "dose_events") > 0, what="the first gateway storing")

        second = GatewayProcess(url_of(other_installation), broker, protocol, SHARED_ID)
        line = second.wait_for_line(r"ERROR .*MQTT session taken over.*", timeout=45).group(0)
        assert f"DOSEWATCH_MQTT_CLIENT_ID={SHARED_ID!r}" in line
        wait_for(
            lambda: (
                second is not None and second.metric("dosewatch_gateway_session_yielded") == 1.0
            ),
            what="the yielded metric",
        )
        wait_for(
            lambda: (session_row(other_installation, SHARED_ID) or {}).get("state") == "yielded",
            what="the newcomer's status row",
        )
        status, body = health(other_installation)
        assert status == 503 and body["session_conflict"] is True
        assert any(SHARED_ID in p and "DOSEWATCH_MQTT_CLIENT_ID" in p for p in body["problems"])
        [gw] = body["gateways"]
        assert gw["state"] == "yielded" and gw["retry_at"] is not None

        status, body = health(pool)
        assert not any(SHARED_ID in p for p in body["problems"])  # the first still receives
        if protocol == "5":
            # Backing off, not fighting (the bug was a takeover every two seconds): the
            # newcomer tries once more after 30 s, and yields again at once.
            first_yield = session_row(other_installation, SHARED_ID)
            assert first_yield is not None and first_yield["takeovers"] == 1
            again = wait_for(
                lambda: (
                    (r := session_row(other_installation, SHARED_ID))
                    and r["takeovers"] == 2
                    and r["state"] == "yielded"
                    and r
                ),
                timeout=YIELD_FIRST_S + 30,
                what="the newcomer's retry",
            )
            assert isinstance(again, dict)
            waited = again["last_takeover_at"] - first_yield["last_takeover_at"]
            assert waited >= timedelta(seconds=YIELD_FIRST_S)

        sent = publisher.stop()
        publisher = None
        wait_for(
            lambda: count(pool, "dose_events") == sent,
            timeout=30,
            what=f"all {sent} events in the first installation's database",
        )
        assert count(other_installation, "dose_events") == 0
        assert count(other_installation, "quarantine") == 0
    finally:
        if publisher is not None:
            publisher.stop()
        codes = [first.stop()] + ([second.stop()] if second else [])
    assert codes == [0, 0] or codes == [0], first.output()
    assert second is not None
    errors = [ln for ln in second.lines if " ERROR " in ln]
    assert len(errors) == 1, second.output()  # one clear line, not one per retry
    assert not [ln for ln in first.lines if " ERROR " in ln or "Traceback" in ln], first.output()
    assert (session_row(other_installation, SHARED_ID) or {})["state"] == "stopped"


def held(pool: ConnectionPool, client_id: str) -> bool:
    """Connected for longer than a takeover would take to show (the settle time)."""
    row = session_row(pool, client_id)
    if row is None or row["state"] != "connected":
        return False
    since = row["since"]
    assert isinstance(since, datetime)
    return datetime.now(UTC) - since > timedelta(seconds=SETTLE_S + 1)


def test_installations_with_default_settings_never_share_a_client_id(
    pool: ConnectionPool, other_installation: ConnectionPool, broker: str
) -> None:
    connected = r"MQTT 5 connected .* as (dosewatch-gw-[0-9a-f]{12})"
    a = GatewayProcess(url_of(pool), broker, "5", None)
    b = GatewayProcess(url_of(other_installation), broker, "5", None)
    try:
        id_a = a.wait_for_line(connected).group(1)
        id_b = b.wait_for_line(connected).group(1)
        assert id_a != id_b
        wait_for(lambda: held(pool, id_a) and held(other_installation, id_b), what="both held")
        assert "taken over" not in a.output() + b.output()
    finally:
        assert a.stop() == 0 and b.stop() == 0
    again = GatewayProcess(url_of(pool), broker, "5", None)  # the first installation, restarted
    try:
        assert again.wait_for_line(connected).group(1) == id_a
    finally:
        assert again.stop() == 0
    assert "taken over" not in again.output()
