"""The sweep wakes at the next window's close instead of waiting out the interval: how long it
sleeps, that it never spins on a slot another process holds, and that its thread sweeps."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from alarms.missed import MIN_GAP_S, Sweeper
from dosewatch.clock import FakeClock
from tests.helpers import add_dispenser, alarms_of, slot_states

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm, window 45 minutes
CLOSE = DUE + timedelta(minutes=45)


@pytest.fixture
def sweeper(pool: ConnectionPool, clock: FakeClock) -> Sweeper:
    add_dispenser(pool, "DSP-A", clock.now())  # 08:00 and 20:00, planned 48 hours ahead
    return Sweeper(pool, clock, max_wait_s=5.0)


def test_it_sleeps_until_the_next_close_within_the_gap_and_the_interval(
    pool: ConnectionPool, clock: FakeClock, sweeper: Sweeper
) -> None:
    clock.set(CLOSE - timedelta(seconds=2))
    assert sweeper.sweep_then_wait_s() == pytest.approx(2.0)
    clock.set(CLOSE - timedelta(milliseconds=10))
    assert sweeper.sweep_then_wait_s() == MIN_GAP_S
    clock.set(CLOSE - timedelta(minutes=3))
    assert sweeper.sweep_then_wait_s() == 5.0  # the interval: new slots may be planned meanwhile
    # At the close: the slot is swept, and the next close (20:00 local) is hours away.
    clock.set(CLOSE)
    assert sweeper.sweep_then_wait_s() == 5.0
    assert slot_states(pool, "DSP-A")[DUE] == "missed" and len(alarms_of(pool, "DSP-A")) == 1


def test_with_nothing_pending_it_waits_the_interval(pool: ConnectionPool, clock: FakeClock) -> None:
    assert Sweeper(pool, clock, max_wait_s=3.0).sweep_then_wait_s() == 3.0


def test_a_slot_another_process_holds_does_not_keep_it_spinning(
    pool: ConnectionPool, database_url: str, clock: FakeClock, sweeper: Sweeper
) -> None:
    clock.set(CLOSE + timedelta(seconds=1))
    with psycopg.connect(database_url) as other:
        other.execute("SELECT id FROM dose_slots WHERE due_at = %s FOR UPDATE", (DUE,))
        # The held slot is skipped, and its past close is not "the next one" (no zero sleep).
        assert sweeper.sweep_then_wait_s() == 5.0
        assert slot_states(pool, "DSP-A")[DUE] == "pending"
    assert sweeper.sweep_then_wait_s() == 5.0  # released: swept on the next wake
    assert slot_states(pool, "DSP-A")[DUE] == "missed"


def test_the_thread_sweeps_when_a_window_has_closed_and_stops(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    sweeper = Sweeper(pool, clock, max_wait_s=0.05, min_gap_s=0.01)
    sweeper.start()
    try:
        clock.set(CLOSE)  # the injected clock moves; the thread notices within its interval
        deadline = time.monotonic() + 10
        while not alarms_of(pool, "DSP-A") and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sweeper.stop()
    assert [a["kind"] for a in alarms_of(pool, "DSP-A")] == ["missed_dose"]
