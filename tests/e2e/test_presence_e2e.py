"""Presence through the real broker: retained `online` copies handed over on subscribe.

What the gateway makes of presence messages (clock offsets, online history, last seen) is its
own logic, tested without a broker in ``tests/integration/test_gateway_logic.py``.

Receive times come from the test's FakeClock; ``wait_for`` only waits for messages to cross the
broker. Retained messages outlive a test on the broker, so this module clears every one it sets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from dispenser_sim.messages import rfc3339
from dosewatch.clock import FakeClock
from dosewatch.config import MqttUrl
from dosewatch.db import presence as presence_sql
from gateway.mqtt import Gateway
from tests.conftest import connected_client, start_gateway, wait_for
from tests.helpers import add_dispenser

Publish = Callable[[str, bytes], None]
DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm, window 45 min
FAST = timedelta(minutes=5)


def topic(dispenser_id: str, kind: str) -> str:
    return f"dosewatch/v1/dispensers/{dispenser_id}/{kind}"


def status(dispenser_id: str, at: datetime) -> bytes:
    return json.dumps(
        {"v": 1, "dispenser_id": dispenser_id, "at": rfc3339(at), "battery_pct": 80}
    ).encode()


def presence(pool: ConnectionPool, dispenser_id: str) -> dict[str, Any] | None:
    with pool.connection() as conn:
        return presence_sql.get_presence(conn, dispenser_id)


def history(pool: ConnectionPool, dispenser_id: str) -> list[tuple[datetime, bool, str]]:
    with pool.connection() as conn:
        rows = presence_sql.online_history(conn, dispenser_id)
    return [(r["at"], r["online"], r["source"]) for r in reversed(rows)]


def samples_landed(pool: ConnectionPool, dispenser_id: str, n: int) -> bool:
    row = presence(pool, dispenser_id)
    return row is not None and len(row["clock_samples"]) == n


def committed(gateway: Gateway, publish: Publish, topic_: str, payload: bytes) -> None:
    """Publish and wait until the gateway has committed it, before the test moves the clock."""
    before = gateway.processed
    publish(topic_, payload)
    wait_for(lambda: gateway.processed > before, what=f"the gateway to commit {topic_}")


@pytest.fixture
def publish_retained(mqtt_url: MqttUrl) -> Iterator[Publish]:
    """Publish retained, like a device does on `online`; clear every such topic afterwards."""
    client = connected_client(mqtt_url, "test-retain")
    topics: set[str] = set()

    def publish(topic_: str, payload: bytes) -> None:
        topics.add(topic_)
        client.publish(topic_, payload, qos=1, retain=True).wait_for_publish(timeout=10)

    try:
        yield publish
    finally:
        # An empty retained payload deletes the retained message, so later tests' gateways are
        # not handed an `online` for a dispenser their database does not know.
        for t in topics:
            client.publish(t, b"", qos=1, retain=True).wait_for_publish(timeout=10)
        client.disconnect()
        client.loop_stop()


def test_a_retained_value_delivered_again_adds_no_history_and_is_not_a_sign_of_life(
    pool: ConnectionPool,
    gateway: Gateway,
    publish_retained: Publish,
    clock: FakeClock,
    mqtt_url: MqttUrl,
    mqtt_v5: bool,
) -> None:
    add_dispenser(pool, "DSP-RET", clock.now())
    t_first = clock.now()
    publish_retained(topic("DSP-RET", "online"), b"1")
    wait_for(lambda: len(history(pool, "DSP-RET")) == 1, what="the first online change")

    # The device reconnects and says '1' again: alive, but not a change.
    t_again = clock.advance(timedelta(minutes=10))
    committed(gateway, publish_retained, topic("DSP-RET", "online"), b"1")

    # A second gateway subscribes (as after a restart) and is handed the retained '1'.
    clock.advance(timedelta(minutes=10))
    restarted = start_gateway(mqtt_url, pool, clock, prefer_v5=mqtt_v5)
    try:
        wait_for(lambda: restarted.processed >= 1, what="the retained copy on subscribe")
    finally:
        restarted.stop()

    assert history(pool, "DSP-RET") == [(t_first, True, "lwt_or_topic")]
    row = presence(pool, "DSP-RET")
    assert row is not None
    assert (row["online"], row["online_changed_at"]) == (True, t_first)
    assert row["last_seen_at"] == t_again  # the broker's stored copy says nothing about now
