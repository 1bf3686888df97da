"""Chaos: the gateway dies and the database goes away mid-burst, and nothing is lost or doubled.

1. A Mosquitto started here with the project's configuration (deploy/mosquitto, on a spare
   port, every dispenser with its own password), the real ``dosewatch gateway`` command as a
   child process: 20,000 events from 500 dispensers, the gateway SIGKILLed twice during the
   burst and restarted → exactly 20,000 rows, no duplicates, nothing quarantined.
2. A private PostgreSQL (pgserver) started and stopped here, never the machine's shared one:
   while it is down the gateway acknowledges nothing and retries with backoff; a gateway
   stopped in that state has its messages redelivered, and every event is stored once.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from dispenser_sim.broker import ProjectBroker, mosquitto_binary
from dispenser_sim.burst import publish_burst
from dispenser_sim.messages import event
from dosewatch.clock import SystemClock
from dosewatch.config import parse_mqtt_url
from dosewatch.db.migrate import migrate
from dosewatch.db.pool import make_pool
from gateway.mqtt import Gateway
from service.embedded import EmbeddedPostgres
from tests.conftest import wait_for
from tests.helpers import add_dispenser

pytestmark = pytest.mark.skipif(
    mosquitto_binary() is None,
    reason="the mosquitto binary is not installed (.ci/run installs it; apt install mosquitto)",
)
ROOT = Path(__file__).resolve().parents[2]
DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
TYPES = ["dose_presented", "dose_taken", "lid_opened", "lid_closed", "power_lost", "power_restored"]


def fleet_events(ids: list[str], per: int) -> dict[str, list[tuple[str, bytes]]]:
    out: dict[str, list[tuple[str, bytes]]] = {}
    for d in ids:
        msgs = []
        for seq in range(1, per + 1):
            type_ = TYPES[seq % len(TYPES)]
            due = DUE + timedelta(hours=12 * (seq % 4)) if type_.startswith("dose_") else None
            body = event(
                d, seq, type_, DUE + timedelta(minutes=seq), dose_due_at=due, event_id=f"{d}-{seq}"
            )
            msgs.append((f"dosewatch/v1/dispensers/{d}/events", body))
        out[d] = msgs
    return out


def count(pool: ConnectionPool, sql: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(next(iter(row.values())))  # type: ignore[attr-defined]


class GatewayProcess:
    """``python -m service.cli gateway`` with its settings in the environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        marker = f"--- start {self.starts}\n"
        with self.log.open("a") as f:
            f.write(marker)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "gateway"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        out.close()

        def connected() -> bool:
            text = self.log.read_text(errors="replace")
            assert self.proc is not None and self.proc.poll() is None, text[-3000:]
            return "MQTT 5 connected" in text.split(marker, 1)[1]

        wait_for(connected, timeout=30, what="the gateway to connect")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_sigkilled_twice_mid_burst_every_event_is_stored_exactly_once(
    pool: ConnectionPool, database_url: str, tmp_path: Path
) -> None:
    n_dispensers, per = 500, 40
    ids = [f"DSP-C{i:04d}" for i in range(n_dispensers)]
    for d in ids:
        add_dispenser(pool, d, DUE - timedelta(hours=1))
    users = {"gateway": uuid.uuid4().hex, **{d: uuid.uuid4().hex for d in ids}}
    messages = fleet_events(ids, per)
    total = n_dispensers * per

    with ProjectBroker(tmp_path / "broker", users) as broker:
        env = {
            **os.environ,
            "DOSEWATCH_DATABASE_URL": database_url,
            "DOSEWATCH_MQTT_URL": broker.url("gateway"),
            "DOSEWATCH_MQTT_CLIENT_ID": "dosewatch-gateway-chaos",
            "DOSEWATCH_MQTT_PROTOCOL": "5",
        }
        gw = GatewayProcess(env, tmp_path / "gateway.log")
        gw.start()
        publish_error: list[BaseException] = []

        def publish() -> None:
            try:
                creds = {d: users[d] for d in ids}
                acked = publish_burst("127.0.0.1", broker.port, messages, creds, timeout_s=120)
                assert acked == total
            except BaseException as exc:  # surfaced in the test thread
                publish_error.append(exc)

        publisher = threading.Thread(target=publish, name="burst")
        publisher.start()
        try:
            stored = "SELECT count(*) FROM dose_events"
            kills = []
            for threshold in (total // 5, total // 2):

                def reached(t: int = threshold) -> bool:
                    return count(pool, stored) >= t

                wait_for(
                    reached,
                    timeout=60,
                    what=f"{threshold} events stored",
                )
                gw.kill()
                kills.append(count(pool, stored))
                gw.start()
            publisher.join(timeout=120)
            assert not publish_error, publish_error
            wait_for(lambda: count(pool, stored) >= total, timeout=60, what="every event")
        finally:
            gw.stop()
            publisher.join(timeout=5)

    assert all(k < total for k in kills), f"the kills came after the burst: {kills}"
    assert count(pool, "SELECT count(*) FROM dose_events") == total
    assert count(pool, "SELECT count(DISTINCT (dispenser_id, event_id)) FROM dose_events") == total
    assert count(pool, "SELECT count(*) FROM dose_event_keys") == total
    assert count(pool, "SELECT count(*) FROM quarantine") == 0
    assert count(pool, "SELECT count(*) FROM dispenser_seq_gaps") == 0
    assert gw.starts == 3


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    pg = EmbeddedPostgres(tmp_path / "pgdata")
    url = pg.start()
    migrate(url)
    try:
        yield pg, url
    finally:
        pg.stop()


def test_postgres_down_the_gateway_holds_acks_retries_and_loses_nothing(
    private_postgres: tuple[EmbeddedPostgres, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pg, url = private_postgres
    pool = make_pool(url, max_size=4, name="pg-down")
    ids = [f"DSP-D{i:02d}" for i in range(20)]
    users = {"gateway": uuid.uuid4().hex, **{d: uuid.uuid4().hex for d in ids}}
    try:
        for d in ids:
            add_dispenser(pool, d, DUE - timedelta(hours=1))
        with ProjectBroker(tmp_path / "broker", users) as broker:
            mqtt_url = parse_mqtt_url(broker.url("gateway"))

            def gateway() -> Gateway:
                gw = Gateway(
                    mqtt_url,
                    pool,
                    SystemClock(),
                    client_id="gw-pg-down",
                    session_expiry_s=600,
                    db_timeout_s=0.5,  # each attempt's wait for a connection: the backoff paces
                )
                gw.start()
                return gw

            def stored() -> int:
                return count(pool, "SELECT count(*) FROM dose_events")

            gw = gateway()
            creds = {d: users[d] for d in ids}
            first = {d: m[:5] for d, m in fleet_events(ids, 10).items()}
            later = {d: m[5:] for d, m in fleet_events(ids, 10).items()}
            publish_burst("127.0.0.1", broker.port, first, creds)
            wait_for(lambda: stored() == 100, what="the first 100 events")

            pg.stop()  # the database goes away under the running gateway
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="gateway.mqtt"):
                publish_burst("127.0.0.1", broker.port, later, creds)
                wait_for(
                    lambda: len([r for r in caplog.records if "retrying" in r.message]) >= 3,
                    timeout=20,
                    what="three retries",
                )
            delays = [
                float(r.message.split("retrying in ")[1].split(" s")[0])
                for r in caplog.records
                if "retrying in" in r.message
            ]
            assert delays[:3] == [0.5, 1.0, 2.0]  # backing off
            assert gw.processed == 100  # nothing of the second burst committed or acknowledged
            # Stop it in this state: whatever it holds was never acknowledged, so the broker
            # must hand all of it to the next gateway with the same session.
            gw.stop()

            pg.start()
            gw = gateway()
            try:
                wait_for(lambda: stored() == 200, timeout=30, what="the held events")
            finally:
                gw.stop()
        assert (
            count(pool, "SELECT count(DISTINCT (dispenser_id, event_id)) FROM dose_events") == 200
        )
        assert count(pool, "SELECT count(*) FROM quarantine") == 0
    finally:
        pool.close()
