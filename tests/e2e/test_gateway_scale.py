"""Gateways at scale: shared subscriptions spread the load; garbage does not grow memory.

Both run against a Mosquitto of their own, so no other test run's traffic interferes.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from dosewatch.config import parse_mqtt_url
from gateway.mqtt import Gateway
from tests.brokers import own_mosquitto
from tests.conftest import connected_client, start_gateway, wait_for
from tests.helpers import add_dispenser


@pytest.fixture
def broker() -> Iterator[str]:
    with own_mosquitto() as url:
        yield url


def gateway(pool: ConnectionPool, clock: FakeClock, url: str, group: str | None) -> Gateway:
    return start_gateway(
        parse_mqtt_url(url), pool, clock, share_group=group, downlink_interval_s=None
    )


def stored(pool: ConnectionPool) -> tuple[int, int]:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) AS n, count(DISTINCT (dispenser_id, event_id)) AS d FROM dose_events"
        ).fetchone()
    assert row is not None
    return row["n"], row["d"]


def test_a_shared_subscription_spreads_events_over_two_gateways_each_stored_once(
    pool: ConnectionPool, clock: FakeClock, broker: str
) -> None:
    for i in range(20):
        add_dispenser(pool, f"DSP-S{i:02d}", clock.now())
    a, b = (gateway(pool, clock, broker, "dosewatch") for _ in range(2))
    publisher = connected_client(parse_mqtt_url(broker))
    try:
        for seq in range(1, 51):
            for i in range(20):
                body = event(f"DSP-S{i:02d}", seq, "lid_opened", clock.now())
                publisher.publish(f"dosewatch/v1/dispensers/DSP-S{i:02d}/events", body, qos=1)
        wait_for(lambda: stored(pool)[0] >= 1000, timeout=60, what="1,000 events stored")
    finally:
        a.stop()
        b.stop()
        publisher.disconnect()
        publisher.loop_stop()
    assert stored(pool) == (1000, 1000)
    # Both took a share of the work.
    assert a.processed > 100 and b.processed > 100
    assert a.processed + b.processed == 1000


# The publisher runs in a process of its own, so that only the gateway's memory is measured.
_GARBAGE_PUBLISHER = """
import sys
import paho.mqtt.client as mqtt
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
garbage = [b"\\xff\\xfe not utf-8", b"{not json", b'{"v": 2}', b"x" * 9000, b"[]" * 50]
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
c.connect(host, port)
c.loop_start()
for i in range(n):
    info = c.publish(f"dosewatch/v1/dispensers/DSP-G{i % 500:03d}/events", garbage[i % 5], qos=1)
    if i % 10_000 == 9_999:  # paho's 16-bit message ids: never queue 65,536 at once
        info.wait_for_publish(timeout=60)
info.wait_for_publish(timeout=60)
c.disconnect()
c.loop_stop()
"""


def test_memory_stays_flat_under_100000_garbage_messages(
    pool: ConnectionPool, clock: FakeClock, broker: str
) -> None:
    gw = gateway(pool, clock, broker, None)
    url = parse_mqtt_url(broker)

    def blast(n: int) -> None:
        start = gw.processed
        subprocess.run(
            [sys.executable, "-c", _GARBAGE_PUBLISHER, url.host, str(url.port), str(n)],
            check=True,
            timeout=300,
        )
        wait_for(lambda: gw.processed >= start + n, timeout=120, what=f"{n} messages processed")
        time.sleep(1)  # let the last acknowledgements leave

    # tracemalloc counts live Python objects, which is what a leak would grow; the resident
    # size would also count the allocator's free lists.
    tracemalloc.start()
    try:
        t0 = time.monotonic()
        blast(20_000)  # warm up: pools, caches, metric label sets
        gc.collect()
        warm, _ = tracemalloc.get_traced_memory()
        blast(80_000)
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
        print(f"100,000 garbage messages in {time.monotonic() - t0:.1f} s; live {warm} → {after}")
    finally:
        tracemalloc.stop()
        gw.stop()
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) AS n, sum(repeats) AS receipts FROM quarantine"
        ).fetchone()
    # Every receipt counted, with its reason: one record per distinct message (the publisher
    # sends 5 payloads over 500 topics, each topic always the same payload).
    assert row is not None and row["receipts"] == 100_000 and row["n"] == 500
    # Four times the messages after warm-up, and no more than 512 KiB more is alive: a leak of
    # even 8 bytes a message would show.
    assert after - warm < 512 * 1024, (warm, after, peak)
