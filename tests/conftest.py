from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dosewatch.clock import FakeClock
from dosewatch.config import MqttUrl, parse_mqtt_url
from dosewatch.db.migrate import migrate
from dosewatch.db.pool import make_pool
from gateway.mqtt import Gateway
from tests import servers

# A Monday morning in Umeå, in winter time (UTC+1).
T0 = datetime(2026, 11, 23, 6, 50, tzinfo=UTC)

# Every table but the migrations' own, read from the catalogue: a new migration's tables are
# emptied between tests without anyone having to remember to list them here.
_ALL_TABLES = (
    "SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables"
    " WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
)


def pytest_report_header() -> list[str]:
    return ["dosewatch: tests use real PostgreSQL and MQTT servers (see tests/servers.py)"]


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with servers.postgres_server() as (admin, _), servers.private_database(admin) as url:
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def _mqtt_server() -> Iterator[tuple[str, str]]:
    with servers.mqtt_server() as found:
        yield found


@pytest.fixture(scope="session")
def mqtt_url(_mqtt_server: tuple[str, str]) -> MqttUrl:
    return parse_mqtt_url(_mqtt_server[0])


@pytest.fixture(scope="session")
def mqtt_v5(_mqtt_server: tuple[str, str]) -> bool:
    """amqtt speaks only 3.1.1: skip the MQTT 5 attempt (and its timeout) against it."""
    return "amqtt" not in _mqtt_server[1]


def start_gateway(url: MqttUrl, pool: ConnectionPool, clock: FakeClock, **options: Any) -> Gateway:
    """A started gateway with a fresh client id and a short session; stop it when done."""
    gw = Gateway(
        url,
        pool,
        clock,
        client_id=f"dosewatch-test-{uuid.uuid4().hex[:10]}",
        session_expiry_s=60,
        **options,
    )
    gw.start()
    return gw


@pytest.fixture
def gateway(
    pool: ConnectionPool, mqtt_url: MqttUrl, mqtt_v5: bool, clock: FakeClock
) -> Iterator[Gateway]:
    """A running gateway on the real broker, stamping receive times from the test's clock."""
    gw = start_gateway(mqtt_url, pool, clock, prefer_v5=mqtt_v5)
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def _pool(database_url: str) -> Iterator[ConnectionPool]:
    pool = make_pool(database_url, max_size=10, name="tests")
    yield pool
    pool.close()


@pytest.fixture
def pool(_pool: ConnectionPool) -> ConnectionPool:
    """The session pool, on an empty database."""
    with _pool.connection() as conn:
        row = conn.execute(_ALL_TABLES).fetchone()
        assert row is not None
        tables = next(iter(row.values())) if isinstance(row, dict) else row[0]
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    return _pool


@pytest.fixture
def conn(pool: ConnectionPool, database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as c:
        yield c


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def wait_for(
    predicate: Callable[[], object], timeout: float = 15.0, what: str = "condition"
) -> object:
    """Poll for I/O to land (a message through the broker). Never used to wait out a window."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def connected_client(mqtt_url: MqttUrl, prefix: str = "test-pub") -> mqtt.Client:
    """A plain paho client, connected and looping: what a device or a script would use."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-{uuid.uuid4().hex[:8]}"
    )
    if mqtt_url.username:
        client.username_pw_set(mqtt_url.username, mqtt_url.password)
    client.connect(mqtt_url.host, mqtt_url.port)
    client.loop_start()
    return client


@pytest.fixture
def publisher(mqtt_url: MqttUrl) -> Iterator[Callable[[str, bytes], None]]:
    client = connected_client(mqtt_url)

    def publish(topic: str, payload: bytes) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    yield publish
    client.disconnect()
    client.loop_stop()
