"""The gateway's client id and session status, through the real database.

The default client id comes from the installation id the first migration stores, so it is the
same for one database however often it is read (a restart) and different for another
database (another installation). The status rows a gateway writes reach any web process's
``/api/v1/health`` and ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dosewatch.clock import FakeClock
from dosewatch.config import ConfigError, load_settings
from dosewatch.db import gateway_sessions
from dosewatch.db.gateway_sessions import GatewaySession
from dosewatch.db.migrate import migrate
from dosewatch.db.pool import make_pool
from service.runtime import client_id
from tests import servers


@pytest.fixture
def other_database() -> Iterator[str]:
    with servers.postgres_server() as (admin, _), servers.private_database(admin) as url:
        migrate(url)
        yield url


def derived_id(url: str) -> str:
    pool = make_pool(url, max_size=1, name="identity")  # a fresh pool: a restarted process
    try:
        return client_id(load_settings(mqtt_client_id=None, mqtt_share_group=None), pool)
    finally:
        pool.close()


def test_two_installations_get_different_ids_and_a_restart_the_same(
    database_url: str, other_database: str
) -> None:
    first = derived_id(database_url)
    assert first.startswith("dosewatch-gw-") and len(first) == len("dosewatch-gw-") + 12
    migrate(database_url)  # every start migrates: that must not make a new id
    assert derived_id(database_url) == first
    assert derived_id(other_database) != first


def test_an_explicit_client_id_wins(pool: ConnectionPool) -> None:
    assert client_id(load_settings(mqtt_client_id="gw-site-a"), pool) == "gw-site-a"


def test_a_shared_subscription_needs_explicit_ids(pool: ConnectionPool) -> None:
    with pytest.raises(ConfigError, match="DOSEWATCH_MQTT_CLIENT_ID"):
        client_id(load_settings(mqtt_client_id=None, mqtt_share_group="gateways"), pool)
    assert load_settings(mqtt_client_id="").mqtt_client_id is None  # compose's ${VAR:-}


def row(client: str, state: str, clock: FakeClock, **changes: object) -> GatewaySession:
    now = clock.now()
    fields: dict[str, object] = {
        "client_id": client,
        "state": state,
        "broker": "mqtt://broker:1883",
        "host": "gw-host",
        "pid": 4242,
        "since": now,
        "takeovers": 0,
        "last_takeover_at": None,
        "retry_at": None,
        "seen_at": now,
        **changes,
    }
    return GatewaySession(**fields)  # type: ignore[arg-type]


def test_health_and_metrics_report_a_yielded_gateway(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    with pool.connection() as conn:
        gateway_sessions.record(
            conn,
            row(
                "gw-yielded",
                "yielded",
                clock,
                takeovers=1,
                last_takeover_at=clock.now(),
                retry_at=clock.now() + timedelta(seconds=30),
            ),
        )
        gateway_sessions.record(conn, row("gw-fine", "connected", clock))
        gateway_sessions.record(
            conn, row("gw-gone", "yielded", clock, seen_at=clock.now() - timedelta(minutes=5))
        )
    with TestClient(create_app(pool, clock)) as api:
        r = api.get("/api/v1/health")
        metrics = api.get("/metrics").text
    assert r.status_code == 503
    body = r.json()
    assert body["session_conflict"] is True
    assert [p for p in body["problems"] if "gw-" in p] == [
        "gateway 'gw-yielded' receives nothing: another client uses the same "
        "DOSEWATCH_MQTT_CLIENT_ID on the broker and holds the session"
    ]
    states = {g["client_id"]: (g["state"], g["session_conflict"]) for g in body["gateways"]}
    assert states == {
        "gw-fine": ("connected", False),
        "gw-gone": ("silent", False),
        "gw-yielded": ("yielded", True),
    }
    assert 'dosewatch_gateway_session_conflict{client_id="gw-yielded"} 1.0' in metrics
    assert 'dosewatch_gateway_session_conflict{client_id="gw-fine"} 0.0' in metrics
    assert "gw-gone" not in metrics
    assert "dosewatch_alarm_pipeline_healthy 0.0" in metrics


def test_a_gateway_that_kept_its_session_is_flagged_but_healthy(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    with pool.connection() as conn:
        gateway_sessions.record(
            conn, row("gw-first", "connected", clock, takeovers=3, last_takeover_at=clock.now())
        )
    with TestClient(create_app(pool, clock)) as api:
        body = api.get("/api/v1/health").json()
    assert body["session_conflict"] is True
    assert not [p for p in body["problems"] if "gw-first" in p]
    [gw] = body["gateways"]
    assert gw["takeovers"] == 3 and gw["state"] == "connected"
