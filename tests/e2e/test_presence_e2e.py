"""Presence through the real broker: device clock offsets, the `online` topic, last seen.

Receive times come from the test's FakeClock; ``wait_for`` only waits for messages to cross the
broker. Retained messages outlive a test on the broker, so this module clears every one it sets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dispenser_sim.messages import event, rfc3339
from dosewatch.clock import FakeClock
from dosewatch.config import MqttUrl
from dosewatch.db import presence as presence_sql
from gateway.mqtt import Gateway
from tests.auth_helpers import as_admin
from tests.conftest import connected_client, start_gateway, wait_for
from tests.helpers import add_dispenser, slot_states

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


def test_a_clock_five_minutes_fast_is_estimated_and_flagged_but_never_trusted(
    pool: ConnectionPool, gateway: Gateway, publisher: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-FAST", clock.now())
    committed(
        gateway, publisher, topic("DSP-FAST", "status"), status("DSP-FAST", clock.now() + FAST)
    )
    clock.set(DUE + timedelta(minutes=44))  # inside the window by the server clock
    # Stamped 2 s before it arrived: a slower trip gives a smaller sample, which the max ignores.
    publisher(
        topic("DSP-FAST", "events"),
        event("DSP-FAST", 1, "dose_presented", clock.now() + FAST - timedelta(seconds=2)),
    )
    # The device says the dose was taken at 07:49, after window_end 07:45: the server decides.
    publisher(
        topic("DSP-FAST", "events"),
        event("DSP-FAST", 2, "dose_taken", clock.now() + FAST, dose_due_at=DUE, event_id="ev-2"),
    )
    # An event buffered offline for two days: a very negative sample, ignored by the maximum.
    publisher(
        topic("DSP-FAST", "events"),
        event("DSP-FAST", 3, "lid_opened", clock.now() + FAST - timedelta(days=2)),
    )
    wait_for(lambda: samples_landed(pool, "DSP-FAST", 4), what="four clock samples")

    row = presence(pool, "DSP-FAST")
    assert row is not None
    assert row["clock_offset_s"] == pytest.approx(300.0, abs=1.0)
    assert row["clock_flagged"] is True
    assert row["last_seen_at"] == clock.now()
    assert slot_states(pool, "DSP-FAST")[DUE] == "taken"  # on time: received before window_end
    with pool.connection() as conn:
        stored = conn.execute(
            "SELECT occurred_at, received_at FROM dose_events WHERE event_id = 'ev-2'"
        ).fetchone()
    assert stored == {"occurred_at": clock.now() + FAST, "received_at": clock.now()}
    # And the API shows it to staff with the dispenser.
    with as_admin(TestClient(create_app(pool, clock)), pool) as api:
        shown = api.get("/api/v1/dispensers/DSP-FAST").json()["presence"]
    assert shown["clock_flagged"] is True
    assert shown["clock_offset_s"] == pytest.approx(300.0, abs=1.0)
    assert shown["last_seen_at"] == rfc3339(clock.now())


def test_a_correct_clock_is_not_flagged(
    pool: ConnectionPool, gateway: Gateway, publisher: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-RIGHT", clock.now())
    committed(gateway, publisher, topic("DSP-RIGHT", "status"), status("DSP-RIGHT", clock.now()))
    clock.advance(timedelta(minutes=1))
    publisher(
        topic("DSP-RIGHT", "events"),
        event("DSP-RIGHT", 1, "lid_opened", clock.now() - timedelta(seconds=1)),
    )
    wait_for(lambda: samples_landed(pool, "DSP-RIGHT", 2), what="two clock samples")
    row = presence(pool, "DSP-RIGHT")
    assert row is not None
    assert row["clock_offset_s"] == pytest.approx(0.0, abs=1.0)
    assert row["clock_flagged"] is False


def test_online_changes_are_recorded_with_their_history(
    pool: ConnectionPool, gateway: Gateway, publisher: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-ON", clock.now())
    t_off = clock.now()
    committed(gateway, publisher, topic("DSP-ON", "online"), b"0")  # the Last Will
    t_on = clock.advance(timedelta(minutes=7))
    publisher(topic("DSP-ON", "online"), b"1")  # back: the device's own '1'
    wait_for(lambda: len(history(pool, "DSP-ON")) == 2, what="two online changes")

    assert history(pool, "DSP-ON") == [(t_off, False, "lwt_or_topic"), (t_on, True, "lwt_or_topic")]
    row = presence(pool, "DSP-ON")
    assert row is not None
    assert (row["online"], row["online_changed_at"]) == (True, t_on)
    # The Last Will is the broker speaking for a device that has gone: not a sign of life.
    assert row["last_seen_at"] == t_on


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


def test_an_unknown_dispensers_online_message_is_quarantined(
    pool: ConnectionPool, gateway: Gateway, publisher: Publish, clock: FakeClock
) -> None:
    publisher(topic("DSP-GHOST-ON", "online"), b"1")

    def quarantined() -> list[dict[str, Any]]:
        with pool.connection() as conn:
            return conn.execute(
                "SELECT reason FROM quarantine WHERE dispenser_id = 'DSP-GHOST-ON'"
            ).fetchall()

    wait_for(quarantined, what="the unknown dispenser's online message")
    [row] = quarantined()
    assert "unknown dispenser" in row["reason"]
    assert presence(pool, "DSP-GHOST-ON") is None
    assert history(pool, "DSP-GHOST-ON") == []


def test_last_seen_is_the_server_time_of_the_last_message_and_replays_add_no_samples(
    pool: ConnectionPool, gateway: Gateway, publisher: Publish, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-SEEN", clock.now())
    committed(gateway, publisher, topic("DSP-SEEN", "status"), status("DSP-SEEN", clock.now()))
    clock.advance(timedelta(minutes=3))
    replayed = event("DSP-SEEN", 1, "lid_opened", clock.now(), event_id="ev-seen")
    publisher(topic("DSP-SEEN", "events"), replayed)
    wait_for(lambda: samples_landed(pool, "DSP-SEEN", 2), what="two clock samples")
    row = presence(pool, "DSP-SEEN")
    assert row is not None and row["last_seen_at"] == clock.now()

    # The same event again (no PUBACK reached the device): alive now, but no new sample.
    last = clock.advance(timedelta(minutes=2))
    publisher(topic("DSP-SEEN", "events"), replayed)

    def seen_at_last() -> bool:
        row = presence(pool, "DSP-SEEN")
        return row is not None and row["last_seen_at"] == last

    wait_for(seen_at_last, what="the replay to count as seen")
    row = presence(pool, "DSP-SEEN")
    assert row is not None
    assert row["clock_samples"] == [0.0, 0.0]
    assert row["updated_at"] == last
