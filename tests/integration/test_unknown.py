"""The `unknown` slot state: the dispenser was offline when the window closed.

Presence is fed the way the gateway feeds it (``write_batch`` with `online` and `status`
messages); the sweep runs on the test's clock. A buffered dose arriving later clears the alarm
but leaves the nurse's acknowledgement owed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import ConnectionPool

from alarms.jobs import sweep_missed_doses
from dispenser_sim.messages import event, rfc3339
from dosewatch.clock import FakeClock
from dosewatch.domain.offline import OFFLINE_AFTER
from gateway.writer import Inbound, write_batch
from tests.helpers import add_dispenser, alarms_of, slot_states

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm
WINDOW_END = DUE + timedelta(minutes=45)


def base(dispenser_id: str) -> str:
    return f"dosewatch/v1/dispensers/{dispenser_id}"


def online(pool: ConnectionPool, dispenser_id: str, value: bool, at: datetime) -> None:
    with pool.connection() as conn:
        write_batch(conn, [Inbound(f"{base(dispenser_id)}/online", b"1" if value else b"0", at)])


def heartbeat(pool: ConnectionPool, dispenser_id: str, at: datetime) -> None:
    body = json.dumps({"v": 1, "dispenser_id": dispenser_id, "at": rfc3339(at)}).encode()
    with pool.connection() as conn:
        write_batch(conn, [Inbound(f"{base(dispenser_id)}/status", body, at)])


def test_offline_by_last_will_makes_the_slot_unknown_and_a_buffered_dose_clears_it(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-OFF", clock.now())
    heartbeat(pool, "DSP-OFF", clock.now())
    online(pool, "DSP-OFF", False, DUE + timedelta(minutes=10))  # the Last Will

    clock.set(WINDOW_END)
    sweep_missed_doses(pool, clock)
    assert slot_states(pool, "DSP-OFF")[DUE] == "unknown"
    [alarm] = alarms_of(pool, "DSP-OFF")
    assert (alarm["kind"], alarm["state"], alarm["priority"]) == (
        "dose_status_unknown",
        "open",
        "medium",
    )

    # The device comes back and delivers what it buffered: the dose was taken at 08:20 local.
    back = clock.advance(timedelta(minutes=30))
    online(pool, "DSP-OFF", True, back)
    taken = event(
        "DSP-OFF", 7, "dose_taken", DUE + timedelta(minutes=20), dose_due_at=DUE, doses_left=20
    )
    with pool.connection() as conn:
        write_batch(conn, [Inbound(f"{base('DSP-OFF')}/events", taken, back)])

    assert slot_states(pool, "DSP-OFF")[DUE] == "taken_late"  # the server received it late
    [alarm] = alarms_of(pool, "DSP-OFF")
    assert alarm["cleared_at"] == back
    assert alarm["acknowledged_at"] is None  # cleared, but a nurse still owes the acknowledgement
    assert alarm["state"] == "cleared"


def test_a_replayed_dose_not_taken_resolves_unknown_to_missed_and_the_alarm_stands(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    """Through the gateway's one ingest plan: the device's own not-taken, buffered while it was
    cut off, makes the unknown slot missed; the alarm opened at close keeps calling the nurse."""
    add_dispenser(pool, "DSP-NT", clock.now())
    heartbeat(pool, "DSP-NT", clock.now())
    online(pool, "DSP-NT", False, DUE + timedelta(minutes=10))
    clock.set(WINDOW_END)
    sweep_missed_doses(pool, clock)
    assert slot_states(pool, "DSP-NT")[DUE] == "unknown"

    back = clock.advance(timedelta(minutes=30))
    online(pool, "DSP-NT", True, back)
    not_taken = event("DSP-NT", 8, "dose_not_taken", WINDOW_END, dose_due_at=DUE)
    with pool.connection() as conn:
        write_batch(conn, [Inbound(f"{base('DSP-NT')}/events", not_taken, back)] * 2)

    assert slot_states(pool, "DSP-NT")[DUE] == "missed"
    [alarm] = alarms_of(pool, "DSP-NT")
    assert (alarm["kind"], alarm["state"], alarm["cleared_at"]) == (
        "dose_status_unknown",
        "open",
        None,
    )


@pytest.mark.parametrize(
    ("silent_for", "expected_state", "expected_kind"),
    [
        (OFFLINE_AFTER - timedelta(seconds=1), "missed", "missed_dose"),
        (OFFLINE_AFTER, "missed", "missed_dose"),  # the boundary: exactly 15 min is still online
        (OFFLINE_AFTER + timedelta(seconds=1), "unknown", "dose_status_unknown"),
    ],
)
def test_a_dispenser_silent_too_long_is_offline_even_without_a_last_will(
    pool: ConnectionPool,
    clock: FakeClock,
    silent_for: timedelta,
    expected_state: str,
    expected_kind: str,
) -> None:
    add_dispenser(pool, "DSP-QUIET", clock.now())
    online(pool, "DSP-QUIET", True, clock.now())
    heartbeat(pool, "DSP-QUIET", WINDOW_END - silent_for)
    clock.set(WINDOW_END)
    sweep_missed_doses(pool, clock)
    assert slot_states(pool, "DSP-QUIET")[DUE] == expected_state
    assert [a["kind"] for a in alarms_of(pool, "DSP-QUIET")] == [expected_kind]


def test_back_online_before_the_window_closed_means_missed(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-BACK", clock.now())
    online(pool, "DSP-BACK", False, DUE)
    online(pool, "DSP-BACK", True, DUE + timedelta(minutes=30))
    clock.set(WINDOW_END)
    sweep_missed_doses(pool, clock)
    assert slot_states(pool, "DSP-BACK")[DUE] == "missed"


def test_a_dispenser_never_heard_from_gets_the_missed_dose_alarm(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    """No presence at all is not evidence of being offline; the stronger alarm is the safe one."""
    add_dispenser(pool, "DSP-NEW", clock.now())
    clock.set(WINDOW_END)
    sweep_missed_doses(pool, clock)
    assert slot_states(pool, "DSP-NEW")[DUE] == "missed"
