"""Through the real broker: paho publishes, the gateway stores, matches and quarantines.

Receive times come from the test's FakeClock, and the sweep is run with a moved clock: no test
waits for a window to close. ``wait_for`` only waits for messages to cross the broker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from alarms.jobs import sweep_missed_doses
from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from gateway.mqtt import Gateway
from tests.conftest import wait_for
from tests.helpers import add_dispenser, alarms_of, slot_states

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
    assert [bytes(r["payload"]) for r in reasons] == [p.read_bytes() for p in invalid]
    # The two dose_taken examples (with and without dose_due_at) matched the 08:00 slot.
    assert slot_states(pool, "DSP-000123")[DUE] == "taken"


def test_spoofed_topic_and_unknown_dispenser_are_quarantined_and_the_gateway_keeps_going(
    pool: ConnectionPool, gateway: Gateway, publish_: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-000123", clock.now())
    add_dispenser(pool, "DSP-OTHER", clock.now())
    payload = (FIXTURES / "valid" / "event-dose_taken.json").read_bytes()
    publish_(topic("DSP-OTHER"), payload)  # DSP-OTHER pretending to be DSP-000123
    publish_(topic("DSP-GHOST"), event("DSP-GHOST", 1, "dose_taken", DUE, dose_due_at=DUE))
    sentinel(publish_, pool, "DSP-OTHER")
    wait_for(lambda: quarantined(pool, "DSP-GHOST") == 1, what="the unknown dispenser's message")
    with pool.connection() as conn:
        rows = conn.execute("SELECT dispenser_id, reason FROM quarantine ORDER BY id").fetchall()
    reasons = {r["dispenser_id"]: r["reason"] for r in rows}
    assert "DSP-OTHER" in reasons["DSP-OTHER"] and "DSP-000123" in reasons["DSP-OTHER"]
    assert "unknown dispenser" in reasons["DSP-GHOST"]
    assert stored(pool, "DSP-000123") == 0  # the spoof did not touch the real dispenser
    assert slot_states(pool, "DSP-000123")[DUE] == "pending"
    # Still alive: a good event afterwards is stored.
    publish_(topic("DSP-000123"), payload)
    wait_for(lambda: stored(pool, "DSP-000123") == 1, what="a good event after the bad ones")


def test_the_same_event_twice_is_stored_once(
    pool: ConnectionPool, gateway: Gateway, publish_: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-000123", clock.now())
    payload = (FIXTURES / "valid" / "event-dose_taken.json").read_bytes()
    publish_(topic("DSP-000123"), payload)
    publish_(topic("DSP-000123"), payload)
    sentinel(publish_, pool, "DSP-000123")
    assert (
        count(
            pool,
            "SELECT count(*) FROM dose_events WHERE event_id = %s",
            json.loads(payload)["event_id"],
        )
        == 1
    )


def test_dose_taken_inside_the_window_means_taken_and_no_alarm(
    pool: ConnectionPool, gateway: Gateway, publish_: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    clock.set(DUE + timedelta(minutes=4))
    publish_(
        topic("DSP-A"), event("DSP-A", 1, "dose_taken", clock.now(), dose_due_at=DUE, doses_left=20)
    )
    wait_for(lambda: slot_states(pool, "DSP-A")[DUE] == "taken", what="slot taken")
    clock.set(DUE + timedelta(hours=2))
    assert sweep_missed_doses(pool, clock) == []
    assert alarms_of(pool, "DSP-A") == []


def test_no_event_gives_one_alarm_and_a_late_dose_clears_it(
    pool: ConnectionPool, gateway: Gateway, publish_: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    clock.set(DUE + timedelta(minutes=45))
    assert len(sweep_missed_doses(pool, clock)) == 1
    assert len(sweep_missed_doses(pool, clock)) == 0
    [alarm] = alarms_of(pool, "DSP-A")
    assert alarm["state"] == "open"

    clock.advance(timedelta(minutes=10))
    publish_(topic("DSP-A"), event("DSP-A", 7, "dose_taken", clock.now(), dose_due_at=DUE))
    wait_for(lambda: slot_states(pool, "DSP-A")[DUE] == "taken_late", what="slot taken_late")
    [alarm] = alarms_of(pool, "DSP-A")
    assert alarm["state"] == "cleared"
    assert alarm["cleared_at"] == clock.now()
    assert alarm["acknowledged_at"] is None  # clearing is not acknowledging
    with pool.connection() as conn:
        actions = [
            r["action"]
            for r in conn.execute(
                "SELECT action FROM alarm_history WHERE alarm_id = %s ORDER BY id", (alarm["id"],)
            )
        ]
    assert actions == ["opened", "escalated", "cleared"]  # the first step runs as it opens


def test_device_dose_not_taken_opens_the_alarm_at_once(
    pool: ConnectionPool, gateway: Gateway, publish_: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    clock.set(DUE + timedelta(minutes=30))  # window still open on the server
    publish_(topic("DSP-A"), event("DSP-A", 3, "dose_not_taken", clock.now(), dose_due_at=DUE))
    wait_for(lambda: len(alarms_of(pool, "DSP-A")) == 1, what="alarm from dose_not_taken")
    assert slot_states(pool, "DSP-A")[DUE] == "missed"
    clock.set(DUE + timedelta(hours=1))
    assert sweep_missed_doses(pool, clock) == []  # the sweep does not add a second one


def test_unmatched_dose_events_are_stored_and_visible(
    pool: ConnectionPool, gateway: Gateway, publish_: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    odd = datetime(2026, 11, 23, 3, 17, tzinfo=UTC)
    publish_(topic("DSP-A"), event("DSP-A", 4, "dose_taken", odd, dose_due_at=odd))
    wait_for(lambda: stored(pool, "DSP-A") == 1, what="the unmatched event")
    with pool.connection() as conn:
        row = conn.execute("SELECT match, slot_id FROM dose_events").fetchone()
    assert row == {"match": "unmatched", "slot_id": None}


@pytest.fixture
def publish_(publisher: Publish) -> Publish:
    return publisher
