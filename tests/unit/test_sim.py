"""The virtual dispenser's decisions and the demo's first due time (pure parts only)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dispenser_sim.fleet import VirtualDispenser
from dosewatch.domain.protocol import Event, EventType, event_topic
from dosewatch.domain.schedule import local_instant
from gateway.decode import decode
from service.demo import DEMO_FLEET, WINDOW_MIN, first_due
from tests.unit.test_schedule import transitions

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
SEC = timedelta(seconds=1)
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def decoded(dispenser: VirtualDispenser, out: list[tuple[str, bytes]]) -> list[Event]:
    events = []
    for topic, payload in out:
        assert topic == event_topic(dispenser.id)
        message = decode(topic, payload)
        assert isinstance(message, Event), message
        events.append(message)
    return events


# --- VirtualDispenser.actions ----------------------------------------------------------------


def test_nothing_before_the_due_time() -> None:
    d = VirtualDispenser("SIM-001", [DUE], timedelta(seconds=30))
    assert d.actions(DUE - SEC) == []
    assert d.actions(DUE - timedelta(days=1)) == []
    assert d.seq == 0


def test_presents_at_the_due_time() -> None:
    d = VirtualDispenser("SIM-001", [DUE], timedelta(seconds=30))
    (presented,) = decoded(d, d.actions(DUE))
    assert presented.type is EventType.DOSE_PRESENTED
    assert presented.dose_due_at == DUE
    assert presented.occurred_at == DUE
    assert presented.seq == 1
    assert presented.doses_left is None


def test_takes_after_take_after() -> None:
    d = VirtualDispenser("SIM-001", [DUE], timedelta(seconds=30))
    d.actions(DUE)
    assert d.actions(DUE + timedelta(seconds=29)) == []
    (taken,) = decoded(d, d.actions(DUE + timedelta(seconds=30)))
    assert taken.type is EventType.DOSE_TAKEN
    assert taken.dose_due_at == DUE
    assert taken.occurred_at == DUE + timedelta(seconds=30)
    assert taken.seq == 2
    assert taken.doses_left == 27
    assert d.doses_left == 27


def test_never_takes_when_take_after_is_none() -> None:
    d = VirtualDispenser("SIM-003", [DUE], None)
    (presented,) = decoded(d, d.actions(DUE))
    assert presented.type is EventType.DOSE_PRESENTED
    for later in (timedelta(minutes=1), timedelta(hours=1), timedelta(days=30)):
        assert d.actions(DUE + later) == []
    assert d.doses_left == 28


def test_never_repeats() -> None:
    d = VirtualDispenser("SIM-001", [DUE], timedelta(seconds=5))
    assert len(d.actions(DUE + timedelta(seconds=5))) == 2
    for now in (
        DUE + timedelta(seconds=5),
        DUE + timedelta(minutes=5),
        DUE,
        DUE + timedelta(days=2),
    ):
        assert d.actions(now) == []
    assert d.seq == 2


def test_a_late_first_call_presents_then_takes_in_one_go() -> None:
    d = VirtualDispenser("SIM-001", [DUE], timedelta(seconds=30))
    presented, taken = decoded(d, d.actions(DUE + timedelta(minutes=10)))
    assert (presented.type, taken.type) == (EventType.DOSE_PRESENTED, EventType.DOSE_TAKEN)
    assert (presented.seq, taken.seq) == (1, 2)


def test_zero_take_after_takes_at_once() -> None:
    d = VirtualDispenser("SIM-001", [DUE], timedelta(0))
    assert [e.type for e in decoded(d, d.actions(DUE))] == [
        EventType.DOSE_PRESENTED,
        EventType.DOSE_TAKEN,
    ]


def test_several_due_times() -> None:
    second = DUE + timedelta(hours=12)
    d = VirtualDispenser("SIM-001", [DUE, second], timedelta(seconds=30))
    first_round = decoded(d, d.actions(DUE + timedelta(minutes=1)))
    assert [(e.type, e.dose_due_at) for e in first_round] == [
        (EventType.DOSE_PRESENTED, DUE),
        (EventType.DOSE_TAKEN, DUE),
    ]
    assert d.actions(second - SEC) == []
    second_round = decoded(d, d.actions(second + timedelta(minutes=1)))
    assert [(e.type, e.dose_due_at) for e in second_round] == [
        (EventType.DOSE_PRESENTED, second),
        (EventType.DOSE_TAKEN, second),
    ]
    assert [e.seq for e in first_round + second_round] == [1, 2, 3, 4]
    assert second_round[-1].doses_left == 26


def test_event_ids_are_unique() -> None:
    d = VirtualDispenser("SIM-001", [DUE + timedelta(hours=h) for h in range(5)], timedelta(0))
    out = d.actions(DUE + timedelta(days=1))
    ids = [json.loads(payload)["event_id"] for _, payload in out]
    assert len(ids) == 10 and len(set(ids)) == 10


@settings(max_examples=200, deadline=None)
@given(
    offsets_s=st.lists(st.integers(-3600, 6 * 3600), min_size=1, max_size=10, unique=True),
    take_after_s=st.none() | st.integers(0, 3600),
    nows_s=st.lists(st.integers(-3600, 8 * 3600), max_size=25),
)
def test_actions_properties(
    offsets_s: list[int], take_after_s: int | None, nows_s: list[int]
) -> None:
    dues = [DUE + timedelta(seconds=s) for s in offsets_s]
    take_after = None if take_after_s is None else timedelta(seconds=take_after_s)
    d = VirtualDispenser("SIM-042", dues, take_after)
    nows = [DUE + timedelta(seconds=s) for s in nows_s]  # not necessarily increasing
    events: list[Event] = []
    for now in nows:
        batch = decoded(d, d.actions(now))
        assert all(e.occurred_at == now for e in batch)
        events += batch

    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    latest = max(nows, default=None)
    for due in dues:
        presented = [
            e for e in events if e.type is EventType.DOSE_PRESENTED and e.dose_due_at == due
        ]
        taken = [e for e in events if e.type is EventType.DOSE_TAKEN and e.dose_due_at == due]
        should_present = latest is not None and latest >= due
        assert len(presented) == (1 if should_present else 0)
        should_take = take_after is not None and latest is not None and latest >= due + take_after
        assert len(taken) == (1 if should_take else 0)
        if taken:
            assert presented[0].seq < taken[0].seq
            assert taken[0].occurred_at >= due + (take_after or timedelta(0))
        assert all(e.occurred_at >= due for e in presented)
    takes = [e for e in events if e.type is EventType.DOSE_TAKEN]
    assert d.doses_left == 28 - len(takes)
    assert [e.doses_left for e in takes] == list(range(27, 27 - len(takes), -1))


# --- the demo --------------------------------------------------------------------------------


def test_demo_fleet_covers_on_time_late_and_never() -> None:
    takes = [take for *_, take in DEMO_FLEET]
    assert takes.count(None) == 1
    timed = [t for t in takes if t is not None]
    assert all(0 <= t < WINDOW_MIN * 60 for t in timed)  # inside the window: taken on time
    assert len({dispenser_id for dispenser_id, *_ in DEMO_FLEET}) == len(DEMO_FLEET)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 23, 6, 49, 40, tzinfo=UTC), datetime(2026, 11, 23, 6, 50, tzinfo=UTC)),
        (datetime(2026, 11, 23, 6, 50, 0, tzinfo=UTC), datetime(2026, 11, 23, 6, 51, tzinfo=UTC)),
        (
            datetime(2026, 11, 23, 6, 49, 40, 1, tzinfo=UTC),
            datetime(2026, 11, 23, 6, 51, tzinfo=UTC),
        ),
        (datetime(2026, 11, 23, 6, 50, 39, tzinfo=UTC), datetime(2026, 11, 23, 6, 51, tzinfo=UTC)),
        # Spring forward in Stockholm: 01:59:50 CET + 20 s → the next minute is 03:00 CEST.
        (datetime(2026, 3, 29, 0, 59, 30, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        # Fall back: 02:59:10 CEST + 20 s is 02:00 CET, the second 02:00, which "02:00" cannot
        # name (it means the first); the first nameable minute is 03:00 CET = 02:00 UTC.
        (datetime(2026, 10, 25, 0, 59, 10, tzinfo=UTC), datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),
        # Inside the repeated hour (02:30 CET, the second 02:xx): likewise 03:00 CET.
        (datetime(2026, 10, 25, 1, 30, 10, tzinfo=UTC), datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),
        # Just before the repeated hour, the first 02:58 CEST is still nameable.
        (datetime(2026, 10, 25, 0, 57, 30, tzinfo=UTC), datetime(2026, 10, 25, 0, 58, tzinfo=UTC)),
    ],
)
def test_first_due_examples_in_stockholm(now: datetime, expected: datetime) -> None:
    assert first_due(now, STOCKHOLM) == expected


DEMO_ZONES = (
    "Europe/Stockholm",
    "Australia/Sydney",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "UTC",
)


@st.composite
def demo_starts(draw: st.DrawFn) -> tuple[datetime, str]:
    tz_name = draw(st.sampled_from(DEMO_ZONES))
    points = transitions(tz_name)
    near_transition = draw(st.booleans())
    if points and near_transition:
        pivot = draw(st.sampled_from(points))
        now = pivot + timedelta(microseconds=draw(st.integers(-2 * 3600 * 10**6, 2 * 3600 * 10**6)))
    else:
        now = draw(
            st.datetimes(
                min_value=datetime(2000, 1, 1),
                max_value=datetime(2040, 1, 1),
                timezones=st.just(UTC),
            )
        )
    return now, tz_name


@settings(max_examples=500, deadline=None)
@given(demo_starts())
@example((datetime(2026, 10, 25, 0, 59, 10, tzinfo=UTC), "Europe/Stockholm"))
@example((datetime(2026, 10, 25, 1, 30, 10, tzinfo=UTC), "Europe/Stockholm"))
def test_first_due_is_the_first_nameable_whole_minute_at_least_20_s_ahead(
    case: tuple[datetime, str],
) -> None:
    now, tz_name = case
    tz = ZoneInfo(tz_name)
    due = first_due(now, tz)
    local = due.astimezone(tz)
    assert (local.second, local.microsecond) == (0, 0)
    assert due - now >= timedelta(seconds=20), (now, due)
    assert due.tzinfo is UTC
    # Every whole minute skipped between now + 20 s and due is one HH:MM cannot name (the
    # second occurrence of a repeated wall time); in the ordinary case none is skipped.
    minute = due - timedelta(minutes=1)
    while minute >= now + timedelta(seconds=20):
        m_local = minute.astimezone(tz)
        assert local_instant(m_local.date(), m_local.time(), tz) != minute, (now, minute)
        minute -= timedelta(minutes=1)
    if local_instant(local.date(), local.time(), tz) == due and due - now > timedelta(seconds=80):
        assert any(
            local_instant(
                (due - k * timedelta(minutes=1)).astimezone(tz).date(),
                (due - k * timedelta(minutes=1)).astimezone(tz).time(),
                tz,
            )
            != due - k * timedelta(minutes=1)
            for k in range(1, 62)
        ), (now, due)


@settings(max_examples=300, deadline=None)
@given(demo_starts())
@example((datetime(2026, 10, 25, 1, 30, 10, tzinfo=UTC), "Europe/Stockholm"))
def test_first_due_is_expressible_as_a_schedule_dose_time(case: tuple[datetime, str]) -> None:
    """demo.set_up writes the due time as a local HH:MM dose time and asserts that the schedule
    maps it back to the same instant. That holds only if the local minute is not the second
    occurrence of a repeated (fall-back) wall time."""
    now, tz_name = case
    tz = ZoneInfo(tz_name)
    due = first_due(now, tz)
    local = due.astimezone(tz)
    assert local_instant(local.date(), local.time(), tz) == due
