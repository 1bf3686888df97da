"""When the broker goes away and comes back, the gateway reconnects instead of dying."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from dosewatch.config import parse_mqtt_url
from gateway.mqtt import Gateway
from service.embedded import EmbeddedBroker, free_port
from tests.conftest import wait_for
from tests.helpers import add_dispenser

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def test_gateway_survives_a_broker_restart(pool: ConnectionPool, clock: FakeClock) -> None:
    import paho.mqtt.client as mqtt

    add_dispenser(pool, "DSP-R", clock.now())
    port = free_port()
    broker = EmbeddedBroker(port=port)
    url = parse_mqtt_url(broker.start())
    gw = Gateway(
        url,
        pool,
        clock,
        client_id=f"gw-{uuid.uuid4().hex[:8]}",
        session_expiry_s=60,
        prefer_v5=False,
    )
    gw.start()
    try:
        broker.stop()  # the connection drops under the gateway
        broker = EmbeddedBroker(port=port)  # a process: its port is free the moment it ends
        broker.start()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="DSP-R")
        pub.connect(url.host, url.port)
        pub.loop_start()

        def delivered() -> bool:
            # Publish until the gateway has resubscribed on the new broker; ids keep it one event.
            pub.publish(
                "dosewatch/v1/dispensers/DSP-R/events",
                event("DSP-R", 1, "dose_taken", DUE, dose_due_at=DUE, event_id="ev-1"),
                qos=1,
            )
            with pool.connection() as conn:
                row = conn.execute("SELECT count(*) AS n FROM dose_events").fetchone()
            return row is not None and row["n"] == 1

        wait_for(delivered, timeout=45, what="the gateway to reconnect and store the event")
        pub.disconnect()
        pub.loop_stop()
    finally:
        gw.stop()
        broker.stop()
