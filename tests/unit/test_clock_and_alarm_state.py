"""The clock abstraction and the alarm state derived from its facts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dosewatch.clock import FakeClock, SystemClock
from dosewatch.domain.alarms import STATE_SQL, AlarmState, derive_state

T0 = datetime(2026, 11, 23, 6, 50, tzinfo=UTC)
CET = timezone(timedelta(hours=1))

# --- FakeClock -------------------------------------------------------------------------------


def test_fake_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2026, 11, 23, 6, 50))


def test_fake_clock_refuses_a_naive_set() -> None:
    clock = FakeClock(T0)
    with pytest.raises(ValueError, match="naive"):
        clock.set(datetime(2026, 11, 23, 8, 0))
    assert clock.now() == T0  # unchanged by the refused call


def test_fake_clock_stands_still() -> None:
    clock = FakeClock(T0)
    assert clock.now() == T0
    assert clock.now() == T0


def test_fake_clock_reports_utc_whatever_zone_it_was_given() -> None:
    clock = FakeClock(datetime(2026, 11, 23, 7, 50, tzinfo=CET))
    assert clock.now() == T0
    assert clock.now().tzinfo is UTC
    clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=CET))
    assert clock.now() == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_advance_moves_and_returns_the_new_time() -> None:
    clock = FakeClock(T0)
    assert clock.advance(timedelta(minutes=45)) == T0 + timedelta(minutes=45)
    assert clock.now() == T0 + timedelta(minutes=45)
    assert clock.advance(timedelta(seconds=1)) == T0 + timedelta(minutes=45, seconds=1)
    assert clock.advance(timedelta(0)) == clock.now()


def test_advance_accumulates_across_threads() -> None:
    clock = FakeClock(T0)

    def tick() -> None:
        for _ in range(1000):
            clock.advance(timedelta(microseconds=1))

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == T0 + timedelta(microseconds=4000)


@given(st.lists(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)), max_size=20))
def test_advance_sums(steps: list[timedelta]) -> None:
    clock = FakeClock(T0)
    for step in steps:
        clock.advance(step)
    assert clock.now() == T0 + sum(steps, timedelta(0))


def test_system_clock_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)
    assert now.tzinfo is UTC
    assert before <= now <= after


# --- derive_state ----------------------------------------------------------------------------

A, B, C = T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=9)


@pytest.mark.parametrize(
    ("acknowledged", "cleared", "resolved", "expected"),
    [
        (None, None, None, AlarmState.OPEN),
        (A, None, None, AlarmState.ACKNOWLEDGED),
        (None, A, None, AlarmState.CLEARED),
        # cleared is not acknowledged, but a cleared alarm shows as cleared even if someone has it
        (A, B, None, AlarmState.CLEARED),
        (B, A, None, AlarmState.CLEARED),
        (None, None, A, AlarmState.RESOLVED),
        (A, None, B, AlarmState.RESOLVED),
        (None, A, B, AlarmState.RESOLVED),
        (A, B, C, AlarmState.RESOLVED),
    ],
)
def test_derive_state(
    acknowledged: datetime | None,
    cleared: datetime | None,
    resolved: datetime | None,
    expected: AlarmState,
) -> None:
    assert derive_state(acknowledged, cleared, resolved) is expected


maybe_time = st.none() | st.datetimes(timezones=st.just(UTC))


@given(maybe_time, maybe_time, maybe_time)
def test_derive_state_precedence(
    acknowledged: datetime | None, cleared: datetime | None, resolved: datetime | None
) -> None:
    state = derive_state(acknowledged, cleared, resolved)
    # Only presence matters, never the times themselves.
    assert state is derive_state(
        None if acknowledged is None else T0,
        None if cleared is None else T0,
        None if resolved is None else T0,
    )
    assert (state is AlarmState.RESOLVED) == (resolved is not None)
    assert (state is AlarmState.CLEARED) == (resolved is None and cleared is not None)
    assert (state is AlarmState.ACKNOWLEDGED) == (
        resolved is None and cleared is None and acknowledged is not None
    )
    assert (state is AlarmState.OPEN) == (
        acknowledged is None and cleared is None and resolved is None
    )


def test_state_sql_checks_the_same_facts_in_the_same_order() -> None:
    """Without a database: the CASE tests resolved, cleared, acknowledged in that order and
    yields every state's value exactly once."""
    order = [
        STATE_SQL.index(f"WHEN {col} IS NOT NULL")
        for col in ("resolved_at", "cleared_at", "acknowledged_at")
    ]
    assert order == sorted(order)
    for state in AlarmState:
        assert STATE_SQL.count(f"'{state.value}'") == 1
    assert STATE_SQL.index("'resolved'") < STATE_SQL.index("'cleared'")
    assert STATE_SQL.index("'cleared'") < STATE_SQL.index("'acknowledged'")
    assert STATE_SQL.rstrip().endswith("ELSE 'open' END")
