"""Through the real broker: paho publishes, the gateway stores and quarantines every example.

Matching, alarms, duplicates and quarantine rules are the gateway's own logic, tested without
a broker in ``tests/integration/test_gateway_logic.py``.

Receive times come from the test's FakeClock, and the sweep is run with a moved clock: no test
waits for a window to close. ``wait_for`` only waits for messages to cross the broker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from gateway.mqtt import Gateway
from tests.conftest import wait_for
from tests.helpers import add_dispenser, slot_states

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protocol"
DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm
Publish = Callable[[str, bytes], None]


def topic(dispenser_id: str, kind: str = "events") -> str:
    return f"dosewatch/v1/dispensers/{dispenser_id}/{kind}"


def count(pool: ConnectionPool, sql: str, *params: object) -> int:
    with pool.connection() as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(next(iter(row.values())))


def stored(pool: ConnectionPool, dispenser_id: str) -> int:
    return count(pool, "SELECT count(*) FROM dose_events WHERE dispenser_id = %s", dispenser_id)


def quarantined(pool: ConnectionPool, dispenser_id: str) -> int:
    return count(pool, "SELECT count(*) FROM quarantine WHERE dispenser_id = %s", dispenser_id)


def sentinel(publish: Publish, pool: ConnectionPool, dispenser_id: str, seq: int = 9999) -> None:
    """Publish a marker event last and wait for it: per-publisher order is kept by the broker."""
    before = stored(pool, dispenser_id)
    publish(topic(dispenser_id), event(dispenser_id, seq, "lid_closed", DUE))
    wait_for(lambda: stored(pool, dispenser_id) > before, what="the sentinel event")


def test_every_valid_example_is_stored_and_every_invalid_one_quarantined(
    pool: ConnectionPool, gateway: Gateway, publish_: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-000123", clock.now())
    valid = sorted((FIXTURES / "valid").glob("event-*.json"))
    invalid = sorted((FIXTURES / "invalid").iterdir())
    for path in valid:
        publish_(topic("DSP-000123"), path.read_bytes())
    for path in invalid:
        publish_(topic("DSP-000123"), path.read_bytes())
    sentinel(publish_, pool, "DSP-000123")

    ids = {json.loads(p.read_bytes())["event_id"] for p in valid}
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT event_id FROM dose_events WHERE dispenser_id = 'DSP-000123'"
        ).fetchall()
        # Only this dispenser's: the broker may hold retained `online` messages for others.
        reasons = conn.execute(
            "SELECT reason, payload FROM quarantine WHERE dispenser_id = 'DSP-000123' ORDER BY id"
        ).fetchall()
    assert ids <= {r["event_id"] for r in rows}
    assert len(reasons) == len(invalid)
    assert all(r["reason"] for r in reasons)
    # Raw bytes kept, each once (ids within one batch follow the quarantine's lock order).
    assert sorted(bytes(r["payload"]) for r in reasons) == sorted(p.read_bytes() for p in invalid)
    # The two dose_taken examples (with and without dose_due_at) matched the 08:00 slot.
    assert slot_states(pool, "DSP-000123")[DUE] == "taken"


@pytest.fixture
def publish_(publisher: Publish) -> Publish:
    return publisher
