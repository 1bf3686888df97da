"""The config down-link through the real broker: retained config out, config_applied back,
and the out-of-date list (moved by the FakeClock, never by sleeping)."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from dosewatch.config import MqttUrl
from dosewatch.db import schedules as schedule_sql
from dosewatch.db import status as status_sql
from gateway.downlink import DownlinkError, config_topic, on_schedule_changed, publish_config
from gateway.mqtt import Gateway
from tests.conftest import connected_client, wait_for
from tests.helpers import add_dispenser

Publish = Callable[[str, bytes], None]


@pytest.fixture
def server_client(mqtt_url: MqttUrl) -> Iterator[mqtt.Client]:
    """The server side's publishing client; clears the retained configs it set."""
    client = connected_client(mqtt_url, "test-downlink")
    sent: list[str] = []
    original = client.publish

    def tracking_publish(topic: str, *args: object, **kw: object) -> mqtt.MQTTMessageInfo:
        sent.append(topic)
        return original(topic, *args, **kw)  # type: ignore[arg-type]

    client.publish = tracking_publish  # type: ignore[method-assign]
    yield client
    for t in set(sent):
        original(t, b"", qos=1, retain=True).wait_for_publish(timeout=10)
    client.disconnect()
    client.loop_stop()


def device_inbox(mqtt_url: MqttUrl, dispenser_id: str) -> tuple[mqtt.Client, queue.Queue[bytes]]:
    inbox: queue.Queue[bytes] = queue.Queue()
    device = connected_client(mqtt_url, f"dev-{dispenser_id}")
    device.on_message = lambda _c, _u, m: inbox.put(bytes(m.payload))
    device.subscribe(config_topic(dispenser_id), qos=1)
    return device, inbox


def out_of_date(pool: ConnectionPool, clock: FakeClock, minutes: int = 30) -> list[str]:
    with pool.connection() as conn:
        rows = status_sql.config_out_of_date(conn, clock.now(), timedelta(minutes=minutes))
    return [r["dispenser_id"] for r in rows]


def test_schedule_change_publishes_retained_config_and_applied_is_recorded(
    pool: ConnectionPool,
    gateway: Gateway,
    publisher: Publish,
    server_client: mqtt.Client,
    mqtt_url: MqttUrl,
    clock: FakeClock,
) -> None:
    d = f"DSP-DL-{uuid.uuid4().hex[:6]}"
    add_dispenser(pool, d, clock.now())
    with pool.connection() as conn:
        assert on_schedule_changed(conn, server_client, d, clock.now()) == 1
    # The device connects afterwards: the retained config is waiting for it.
    device, inbox = device_inbox(mqtt_url, d)
    try:
        config = json.loads(inbox.get(timeout=10))
    finally:
        device.disconnect()
        device.loop_stop()
    assert config == {
        "v": 1,
        "dispenser_id": d,
        "version": 1,
        "timezone": "Europe/Stockholm",
        "doses": [{"time": "08:00", "window_min": 45}, {"time": "20:00", "window_min": 45}],
        "valid_from": (clock.now() - timedelta(days=1)).date().isoformat(),
    }
    assert out_of_date(pool, clock) == []  # just published: not late yet
    clock.advance(timedelta(minutes=31))
    assert out_of_date(pool, clock) == [d]

    publisher(
        f"dosewatch/v1/dispensers/{d}/events",
        event(d, 1, "config_applied", clock.now(), detail={"version": 1}),
    )

    def applied() -> bool:
        with pool.connection() as conn:
            row = status_sql.config_state(conn, d)
        return row is not None and row["applied_version"] == 1

    wait_for(applied, what="config_applied to be recorded")
    assert out_of_date(pool, clock) == []
    with pool.connection() as conn:
        state = status_sql.config_state(conn, d)
    assert state is not None and state["published_version"] == 1

    # A new version: out of date again once N minutes pass without an answer.
    with pool.connection() as conn, conn.transaction():
        schedule_sql.save_schedule(
            conn,
            d,
            timezone="Europe/Stockholm",
            doses=[{"time": "09:00", "window_min": 30}],
            valid_from=clock.now().date(),
            now=clock.now(),
        )
    with pool.connection() as conn:
        assert on_schedule_changed(conn, server_client, d, clock.now()) == 2
    clock.advance(timedelta(minutes=29))
    assert out_of_date(pool, clock) == []
    clock.advance(timedelta(minutes=2))
    assert out_of_date(pool, clock) == [d]


def test_publish_config_refuses_what_a_device_must_never_get(server_client: mqtt.Client) -> None:
    good = {
        "v": 1,
        "dispenser_id": "DSP-X",
        "version": 3,
        "timezone": "Europe/Stockholm",
        "doses": [{"time": "08:00", "window_min": 45}],
        "valid_from": "2026-11-20",
    }
    with pytest.raises(DownlinkError, match="not 'DSP-Y'"):
        publish_config(server_client, "DSP-Y", good)
    with pytest.raises(DownlinkError, match="not a valid v1 config"):
        publish_config(server_client, "DSP-X", {**good, "doses": [{"time": "25:00"}]})
    with pytest.raises(DownlinkError, match="not JSON"):
        publish_config(server_client, "DSP-X", b"{nope")
    assert publish_config(server_client, "DSP-X", json.dumps(good)) == 3
