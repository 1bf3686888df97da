"""Gateway metrics through the real broker: counted after commit, quarantine by reason.

A broker of its own (plain Mosquitto, anonymous, a spare port): on the shared one, other test
runs' traffic would reach this gateway and move its counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from dosewatch.config import parse_mqtt_url
from gateway import metrics
from gateway.decode import Rejection, decode
from gateway.mqtt import Gateway
from tests.brokers import own_mosquitto
from tests.conftest import connected_client, wait_for
from tests.helpers import add_dispenser

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protocol"
Publish = Callable[[str, bytes], None]


def snapshot() -> dict[str, float]:
    return {
        "received": metrics.value(metrics.RECEIVED),
        "event": metrics.value(metrics.STORED, kind="event"),
        "status": metrics.value(metrics.STORED, kind="status"),
        "duplicates": metrics.value(metrics.DUPLICATES),
        "oversize": metrics.value(metrics.QUARANTINED, reason="oversize"),
        "spoofed": metrics.value(metrics.QUARANTINED, reason="spoofed_topic"),
        "unknown": metrics.value(metrics.QUARANTINED, reason="unknown_dispenser"),
        "batches": metrics.REGISTRY.get_sample_value("dosewatch_gateway_batch_size_count") or 0,
    }


@pytest.fixture
def own_broker() -> Iterator[str]:
    with own_mosquitto() as url:
        yield url


def test_counts_received_stored_duplicates_and_quarantine_reasons(
    pool: ConnectionPool, own_broker: str, clock: FakeClock
) -> None:
    url = parse_mqtt_url(own_broker)
    gateway = Gateway(url, pool, clock, client_id="gw-metrics", session_expiry_s=60)
    gateway.start()
    client = connected_client(url)

    def publisher(topic: str, payload: bytes) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    try:
        _exercise(pool, gateway, publisher, clock)
    finally:
        client.disconnect()
        client.loop_stop()
        gateway.stop()


def _exercise(pool: ConnectionPool, gateway: Gateway, publisher: Publish, clock: FakeClock) -> None:
    add_dispenser(pool, "DSP-M", clock.now())
    add_dispenser(pool, "DSP-N", clock.now())
    before = snapshot()
    t = "dosewatch/v1/dispensers/{}/events"
    one = event("DSP-M", 1, "lid_opened", clock.now(), event_id="m-1")
    publisher(t.format("DSP-M"), one)
    publisher(t.format("DSP-M"), one)  # a duplicate
    publisher(t.format("DSP-M"), b"{" + b" " * 9000 + b"}")  # oversize
    publisher(t.format("DSP-N"), one)  # DSP-N posing as DSP-M
    publisher(t.format("DSP-GHOST"), event("DSP-GHOST", 1, "jam", clock.now()))
    publisher(
        "dosewatch/v1/dispensers/DSP-M/status",
        b'{"v": 1, "dispenser_id": "DSP-M", "at": "2026-11-23T06:50:00Z"}',
    )
    done = before["received"] + 6

    wait_for(
        lambda: gateway.processed >= 6 and metrics.value(metrics.RECEIVED) >= done,
        what="six messages committed",
    )
    after = snapshot()
    delta = {k: after[k] - before[k] for k in after}
    assert delta["received"] == 6
    assert (delta["event"], delta["status"], delta["duplicates"]) == (1, 1, 1)
    assert (delta["oversize"], delta["spoofed"], delta["unknown"]) == (1, 1, 1)
    assert delta["batches"] >= 1
    assert metrics.value(metrics.LAG_MESSAGES) == 0
    assert metrics.value(metrics.LAG_SECONDS) == 0


@pytest.mark.parametrize("path", sorted((FIXTURES / "invalid").iterdir()), ids=lambda p: p.name)
def test_every_invalid_fixture_gets_a_known_reason_label(path: Path) -> None:
    result = decode("dosewatch/v1/dispensers/DSP-000123/events", path.read_bytes())
    assert isinstance(result, Rejection)
    assert metrics.reason_label(result.reason) != "other", result.reason


def test_the_metrics_app_serves_prometheus_text() -> None:
    client = TestClient(metrics.asgi_app())
    body = client.get("/").text
    for name in (
        "dosewatch_gateway_received_total",
        "dosewatch_gateway_stored_total",
        "dosewatch_gateway_duplicates_total",
        "dosewatch_gateway_batch_size_bucket",
        "dosewatch_gateway_batch_seconds_bucket",
        "dosewatch_gateway_consumer_lag_messages",
        "dosewatch_gateway_consumer_lag_seconds",
    ):
        assert name in body
