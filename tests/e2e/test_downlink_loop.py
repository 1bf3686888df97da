"""A schedule saved through the API reaches the dispenser as a retained config, via the gateway.

The web app has no MQTT client; the gateway's down-link round publishes every config whose
current schedule version is not yet published, and records it.
"""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from dosewatch.clock import FakeClock
from dosewatch.config import MqttUrl
from dosewatch.db import schedules as schedule_sql
from dosewatch.db import status as status_sql
from gateway.mqtt import Gateway
from tests.conftest import connected_client, start_gateway, wait_for
from tests.helpers import add_dispenser


@pytest.fixture
def fast_downlink_gateway(
    pool: ConnectionPool, mqtt_url: MqttUrl, mqtt_v5: bool, clock: FakeClock
) -> Iterator[Gateway]:
    gw = start_gateway(mqtt_url, pool, clock, prefer_v5=mqtt_v5, downlink_interval_s=0.1)
    yield gw
    gw.stop()


def test_a_saved_schedule_is_published_as_retained_config_and_recorded(
    pool: ConnectionPool, clock: FakeClock, mqtt_url: MqttUrl, fast_downlink_gateway: Gateway
) -> None:
    dispenser = f"DSP-DL{uuid.uuid4().hex[:6]}"
    add_dispenser(pool, dispenser, clock.now())
    got: queue.Queue[dict] = queue.Queue()
    device = connected_client(mqtt_url, "test-device")
    device.on_message = lambda _c, _u, msg: (
        got.put(json.loads(msg.payload)) if msg.payload else None
    )
    device.subscribe(f"dosewatch/v1/dispensers/{dispenser}/config", qos=1)
    try:
        first = got.get(timeout=15)
        assert first["dispenser_id"] == dispenser and first["version"] == 1
        assert [d["time"] for d in first["doses"]] == ["08:00", "20:00"]

        # A new version saved by "another process" (straight into the database).
        with pool.connection() as conn, conn.transaction():
            schedule_sql.save_schedule(
                conn,
                dispenser,
                timezone="Europe/Stockholm",
                doses=[{"time": "09:00", "window_min": 30}],
                valid_from=clock.now().date(),
                now=clock.now(),
            )
        second = got.get(timeout=15)
        assert second["version"] == 2 and second["doses"] == [{"time": "09:00", "window_min": 30}]

        def recorded() -> bool:
            with pool.connection() as conn:
                state = status_sql.config_state(conn, dispenser)
            return state is not None and state["published_version"] == 2

        wait_for(recorded, what="the published version recorded")
    finally:
        # Leave no retained config behind on the shared broker.
        device.publish(f"dosewatch/v1/dispensers/{dispenser}/config", b"", qos=1, retain=True)
        device.disconnect()
        device.loop_stop()
