"""The session guard with paho's callbacks played by hand, for what the test broker cannot do.

Mosquitto 2.0.11 closes a session taken over without MQTT 5's reason code 0x8E, so the path a
broker that sends it takes (the first holder told, and taking the session back) is driven here
by calling the guard as paho would. Its status row goes to the real database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from psycopg_pool import ConnectionPool

from dosewatch.clock import FakeClock
from dosewatch.db import gateway_sessions
from gateway import metrics
from gateway.session import TAKEN_OVER, YIELD_FIRST_S, SessionGuard
from tests.conftest import wait_for

SETTLE = 0.3


class Client(mqtt.Client):
    """A real paho client, never connected, that remembers its reconnect pace."""

    def __init__(self) -> None:
        super().__init__(mqtt.CallbackAPIVersion.VERSION2, client_id="guard-test")
        self.delays: list[tuple[int, int]] = []

    def reconnect_delay_set(self, min_delay: int = 1, max_delay: int = 120) -> None:
        self.delays.append((min_delay, max_delay))
        super().reconnect_delay_set(min_delay, max_delay)


class Guarded:
    def __init__(self, pool: ConnectionPool, clock: FakeClock) -> None:
        self.accepted: list[int] = []
        self.dropped: list[int] = []
        self.guard: SessionGuard[int] = SessionGuard(
            "gw-guard",
            "mqtt://broker:1883",
            pool,
            clock,
            accept=self.accepted.append,
            on_dropped=self.dropped.append,
            settle_s=SETTLE,
        )
        self.client = Client()


@pytest.fixture
def g(pool: ConnectionPool, clock: FakeClock) -> Iterator[Guarded]:
    guarded = Guarded(pool, clock)
    yield guarded
    guarded.guard.stop()


TAKEOVER = ReasonCode(PacketTypes.DISCONNECT, identifier=TAKEN_OVER)


def stored_state(pool: ConnectionPool) -> str | None:
    with pool.connection() as conn:
        rows = gateway_sessions.all_sessions(conn)
    return rows[0].state if rows else None


def test_told_of_a_takeover_after_holding_the_session_it_takes_it_back(
    g: Guarded, pool: ConnectionPool, caplog: pytest.LogCaptureFixture
) -> None:
    g.guard.connected(g.client, session_present=False)
    assert g.guard.settled.wait(5)
    with caplog.at_level(logging.WARNING, logger="gateway.session"):
        g.guard.disconnected(g.client, TAKEOVER, from_broker=True)
    [line] = [r.getMessage() for r in caplog.records]
    assert "DOSEWATCH_MQTT_CLIENT_ID='gw-guard'" in line and "takes it back" in line
    assert g.guard.state == "connected" and g.client.delays == []  # reconnects at once
    assert metrics.value(metrics.SESSION_YIELDED, client_id="gw-guard") == 0


def test_a_resumed_session_lost_before_it_settles_is_yielded_and_nothing_stored(
    g: Guarded, pool: ConnectionPool, caplog: pytest.LogCaptureFixture
) -> None:
    g.guard.connected(g.client, session_present=True)
    g.guard.deliver(1)
    g.guard.deliver(2)
    assert g.accepted == []  # held: the session may be someone else's
    with caplog.at_level(logging.ERROR, logger="gateway.session"):
        g.guard.disconnected(g.client, TAKEOVER, from_broker=True)
    assert g.accepted == [] and g.dropped == [2]  # left unacknowledged, for the broker to resend
    assert g.guard.state == "yielded"
    assert g.client.delays == [(YIELD_FIRST_S, YIELD_FIRST_S)]
    assert metrics.value(metrics.SESSION_YIELDED, client_id="gw-guard") == 1
    [line] = [r.getMessage() for r in caplog.records]
    assert "DOSEWATCH_MQTT_CLIENT_ID='gw-guard'" in line and "yields" in line
    wait_for(lambda: stored_state(pool) == "yielded", what="the yielded row")

    # The retry finds the session free: held messages go on once it has lasted SETTLE.
    g.guard.connected(g.client, session_present=True)
    g.guard.deliver(3)
    assert g.accepted == []
    assert g.guard.settled.wait(5)
    g.guard.deliver(4)
    assert g.accepted == [3, 4]
    assert g.guard.state == "connected" and g.client.delays[-1] == (1, 30)
    assert metrics.value(metrics.SESSION_YIELDED, client_id="gw-guard") == 0
    wait_for(lambda: stored_state(pool) == "connected", what="the connected row")


def test_a_new_session_is_stored_at_once_and_an_ordinary_drop_is_no_takeover(
    g: Guarded, pool: ConnectionPool
) -> None:
    g.guard.connected(g.client, session_present=False)
    g.guard.deliver(1)
    assert g.accepted == [1]  # nobody else's messages can be in a new session
    lost = ReasonCode(PacketTypes.DISCONNECT, aName="Unspecified error")
    g.guard.disconnected(g.client, lost, from_broker=False)
    assert g.guard.state == "connected" and g.client.delays == []
    g.guard.stop()
    assert stored_state(pool) == "stopped"
