"""Gateway metrics: counted after commit, quarantine by reason.

Messages are fired in-process into the real gateway and database (``fire_message``): no broker,
so no other test run's traffic can move these counters, and nothing waits.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from gateway import metrics
from gateway.decode import Rejection, decode
from gateway.mqtt import Gateway
from tests.gateway_helpers import fire_message, fire_messages, memory_gateway
from tests.helpers import add_dispenser

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protocol"


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


def test_counts_received_stored_duplicates_and_quarantine_reasons(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    with memory_gateway(pool, clock) as gateway:
        _exercise(pool, gateway, clock)


def _exercise(pool: ConnectionPool, gateway: Gateway, clock: FakeClock) -> None:
    add_dispenser(pool, "DSP-M", clock.now())
    add_dispenser(pool, "DSP-N", clock.now())
    before = snapshot()
    t = "dosewatch/v1/dispensers/{}/events"
    one = event("DSP-M", 1, "lid_opened", clock.now(), event_id="m-1")
    fire_message(gateway, t.format("DSP-M"), one)
    fire_messages(
        gateway,
        [
            (t.format("DSP-M"), one),  # a duplicate
            (t.format("DSP-M"), b"{" + b" " * 9000 + b"}"),  # oversize
            (t.format("DSP-N"), one),  # DSP-N posing as DSP-M
            (t.format("DSP-GHOST"), event("DSP-GHOST", 1, "jam", clock.now())),
            (
                "dosewatch/v1/dispensers/DSP-M/status",
                b'{"v": 1, "dispenser_id": "DSP-M", "at": "2026-11-23T06:50:00Z"}',
            ),
        ],
    )
    assert gateway.processed == 6
    after = snapshot()
    delta = {k: after[k] - before[k] for k in after}
    assert delta["received"] == 6
    assert (delta["event"], delta["status"], delta["duplicates"]) == (1, 1, 1)
    assert (delta["oversize"], delta["spoofed"], delta["unknown"]) == (1, 1, 1)
    assert delta["batches"] == 2
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
