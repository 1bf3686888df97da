"""The newcomer's path: embedded PostgreSQL (pgserver) and broker (amqtt) really run here.

CI machines have real servers, so without this test the embedded path would go unexercised.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg

from dosewatch.config import parse_mqtt_url
from dosewatch.db.migrate import migrate
from gateway.connection import connect_client
from service.embedded import EmbeddedBroker, EmbeddedPostgres
from tests.conftest import wait_for


def test_embedded_postgres_migrates_and_keeps_data_between_runs(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    pg = EmbeddedPostgres(pgdata)
    url = pg.start()
    try:
        assert migrate(url) == "postgresql"
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO patients (name, phone) VALUES ('Kept', '+46 1')")
    finally:
        pg.stop()
    again = EmbeddedPostgres(pgdata)
    url = again.start()
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT name FROM patients").fetchone()
        assert row == ("Kept",)
    finally:
        again.stop()


def test_embedded_broker_falls_back_to_mqtt_311_and_delivers() -> None:
    broker = EmbeddedBroker()
    url = parse_mqtt_url(broker.start())
    got: list[bytes] = []
    try:
        # prefer_v5: the real fallback path, MQTT 5 refused then 3.1.1 accepted.
        sub = connect_client(
            url,
            f"sub-{uuid.uuid4().hex[:6]}",
            session_expiry_s=0,
            prefer_v5=True,
            timeout_s=3,
            subscriptions=("t/#",),
            on_message=lambda _c, _u, m: got.append(m.payload),
        )
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect(url.host, url.port)
        pub.loop_start()

        def delivered() -> bool:
            pub.publish("t/x", b"hello", qos=1)
            return bool(got)

        wait_for(delivered, what="a message through the embedded broker")
        assert got[0] == b"hello"
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()
    finally:
        broker.stop()
