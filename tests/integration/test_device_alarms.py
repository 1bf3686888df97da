"""Device alarms against the real database, fed the way the gateway feeds it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from alarms.device import sweep_device_alarms
from dispenser_sim.messages import event, rfc3339
from dosewatch.clock import FakeClock
from dosewatch.domain.alarms import Outcome
from dosewatch.usecases import alarm_actions
from gateway.writer import Inbound, write_batch
from tests.helpers import add_dispenser, alarms_of

BASE = "dosewatch/v1/dispensers/DSP-D"


def status(pool: ConnectionPool, at: datetime, **fields: Any) -> None:
    body = {"v": 1, "dispenser_id": "DSP-D", "at": rfc3339(at), "schedule_version": 1, **fields}
    with pool.connection() as conn:
        write_batch(conn, [Inbound(f"{BASE}/status", json.dumps(body).encode(), at)])


def device_event(pool: ConnectionPool, at: datetime, seq: int, type_: str, **kw: Any) -> None:
    with pool.connection() as conn:
        write_batch(conn, [Inbound(f"{BASE}/events", event("DSP-D", seq, type_, at, **kw), at)])


def open_kinds(pool: ConnectionPool) -> dict[str, str]:
    return {a["kind"]: a["state"] for a in alarms_of(pool, "DSP-D") if a["state"] != "resolved"}


def test_conditions_open_once_and_clear_when_they_stop_holding(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-D", clock.now())
    status(pool, clock.now(), battery_pct=12, temperature_c=27.5, on_mains=True, doses_left=30)
    sweep_device_alarms(pool, clock)
    sweep_device_alarms(pool, clock)  # idempotent
    assert open_kinds(pool) == {"battery_low": "open", "temperature": "open"}
    low = next(a for a in alarms_of(pool, "DSP-D") if a["kind"] == "battery_low")
    assert low["priority"] == "low" and low["next_step_at"] is not None  # it escalates too

    clock.advance(timedelta(minutes=5))
    status(pool, clock.now(), battery_pct=80, temperature_c=21.0, on_mains=True, doses_left=30)
    sweep_device_alarms(pool, clock)
    # Cleared, not resolved: a nurse still acknowledges and closes them.
    assert open_kinds(pool) == {"battery_low": "cleared", "temperature": "cleared"}
    assert len(alarms_of(pool, "DSP-D")) == 2


def test_help_button_and_jam_open_high_priority_alarms_once_until_resolved(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-D", clock.now())
    device_event(pool, clock.now(), 1, "help_pressed")
    device_event(pool, clock.now(), 2, "jam", detail={"code": "J2"})
    sweep_device_alarms(pool, clock)
    clock.advance(timedelta(minutes=1))
    device_event(pool, clock.now(), 3, "help_pressed")  # pressed again while open: same alarm
    sweep_device_alarms(pool, clock)
    alarms = alarms_of(pool, "DSP-D")
    assert sorted((a["kind"], a["priority"]) for a in alarms) == [
        ("device_fault", "high"),
        ("help_button", "high"),
    ]
    help_alarm = next(a for a in alarms if a["kind"] == "help_button")
    with pool.connection() as conn:
        alarm_actions.resolve(
            conn, help_alarm["id"], clock.now(), "Anna", "console", Outcome.HOME_VISIT, None
        )
    sweep_device_alarms(pool, clock)  # the old press does not reopen it
    assert [a["kind"] for a in alarms_of(pool, "DSP-D")].count("help_button") == 1
    clock.advance(timedelta(minutes=1))
    device_event(pool, clock.now(), 4, "help_pressed")  # a new press after resolution: new alarm
    sweep_device_alarms(pool, clock)
    assert [a["kind"] for a in alarms_of(pool, "DSP-D")].count("help_button") == 2


def online(pool: ConnectionPool, value: bytes, at: datetime) -> None:
    with pool.connection() as conn:
        write_batch(conn, [Inbound(f"{BASE}/online", value, at)])


def test_offline_with_a_dose_due_soon(pool: ConnectionPool, clock: FakeClock) -> None:
    # 09:00 local = 08:00Z; the clock is 06:50Z: a dose due within the 2-hour look-ahead.
    add_dispenser(pool, "DSP-D", clock.now(), doses=[{"time": "09:00", "window_min": 45}])
    online(pool, b"0", clock.now())
    clock.advance(timedelta(minutes=15) - timedelta(seconds=1))
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {}  # a Will not yet standing OFFLINE_AFTER: nobody is called
    clock.advance(timedelta(seconds=1))
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {"dispenser_offline": "open"}
    clock.advance(timedelta(minutes=3))
    online(pool, b"1", clock.now())
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {"dispenser_offline": "cleared"}


def test_a_broker_restart_wills_the_whole_fleet_offline_for_seconds_no_alarm(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    """Mosquitto publishes every connected client's Will when it stops; the devices say
    ``online = 1`` again seconds later. A sweep in between must not page anyone."""
    add_dispenser(pool, "DSP-D", clock.now(), doses=[{"time": "09:00", "window_min": 45}])
    online(pool, b"1", clock.now())
    clock.advance(timedelta(minutes=5))
    online(pool, b"0", clock.now())
    clock.advance(timedelta(seconds=6))
    sweep_device_alarms(pool, clock)
    online(pool, b"1", clock.now())
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {}
    assert alarms_of(pool, "DSP-D") == []


def test_mains_lost_for_30_minutes(pool: ConnectionPool, clock: FakeClock) -> None:
    add_dispenser(pool, "DSP-D", clock.now())
    device_event(pool, clock.now(), 1, "power_lost")
    status(pool, clock.now(), on_mains=False, doses_left=30)
    clock.advance(timedelta(minutes=29))
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {}
    clock.advance(timedelta(minutes=1))
    status(pool, clock.now(), on_mains=False, doses_left=30)
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {"power_lost": "open"}
    device_event(pool, clock.now(), 2, "power_restored")
    status(pool, clock.now(), on_mains=True, doses_left=30)
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {"power_lost": "cleared"}


def test_refill_needed_then_empty(pool: ConnectionPool, clock: FakeClock) -> None:
    add_dispenser(pool, "DSP-D", clock.now(), horizon=timedelta(days=4))  # two doses a day
    status(pool, clock.now(), doses_left=3, on_mains=True)  # empty after the 3rd: 1.5 days
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {"refill_needed": "open"}
    device_event(pool, clock.now(), 1, "dose_taken", doses_left=0)
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {"refill_needed": "cleared", "empty": "open"}


def test_schedule_not_applied_in_time(pool: ConnectionPool, clock: FakeClock) -> None:
    add_dispenser(pool, "DSP-D", clock.now())  # schedule version 1 saved now
    status(pool, clock.now(), schedule_version=None, doses_left=30, on_mains=True)
    clock.advance(timedelta(minutes=30))
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {"schedule_not_applied": "open"}
    device_event(pool, clock.now(), 1, "config_applied", detail={"version": 1})
    sweep_device_alarms(pool, clock)
    assert open_kinds(pool) == {"schedule_not_applied": "cleared"}
