"""Schedule expansion: wall-clock dose times → UTC slots, especially across daylight-saving days.

The property tests compare :func:`expand` with an independent oracle that does not use ``fold``:
it searches the UTC offsets a zone uses around a wall time for instants that show that wall time,
takes the earliest (overlap → first occurrence), and for a gap applies the offset in force
before the transition (→ moved forward by the gap's length).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dosewatch.domain.schedule import DoseTime, PlannedSlot, Schedule, expand, local_instant

STOCKHOLM = "Europe/Stockholm"
ZONES = (
    "Europe/Stockholm",
    "Australia/Sydney",
    "America/Santiago",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "UTC",
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def sched(
    tz: str,
    *doses: tuple[str, int],
    valid_from: date = date(2020, 1, 1),
    valid_until: date | None = None,
) -> Schedule:
    return Schedule(
        timezone=tz,
        doses=tuple(DoseTime(time.fromisoformat(t), w) for t, w in doses),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def due_on(slots: list[PlannedSlot], day: date, at: time) -> list[datetime]:
    return [s.due_at for s in slots if s.local_date == day and s.local_time == at]


# --- the oracle ------------------------------------------------------------------------------


def _offsets_near(wall: datetime, tz: ZoneInfo) -> set[timedelta]:
    """Every UTC offset the zone uses at instants that could show ``wall`` (±15 h)."""
    as_utc = wall.replace(tzinfo=UTC)
    out = set()
    for quarter in range(-15 * 4, 15 * 4 + 1):
        offset = (as_utc + timedelta(minutes=15 * quarter)).astimezone(tz).utcoffset()
        assert offset is not None
        out.add(offset)
    return out


def oracle_due(day: date, at: time, tz: ZoneInfo) -> datetime:
    wall = datetime.combine(day, at)
    offsets = _offsets_near(wall, tz)
    showing_wall = sorted(
        wall.replace(tzinfo=UTC) - off
        for off in offsets
        if (wall.replace(tzinfo=UTC) - off).astimezone(tz).replace(tzinfo=None) == wall
    )
    if showing_wall:
        return showing_wall[0]  # exists (once or twice): the first occurrence
    # A gap: exactly one transition around it; the offset before a gap is the smaller one.
    assert len(offsets) == 2, (wall, offsets)
    return wall.replace(tzinfo=UTC) - min(offsets)


@cache
def transitions(
    tz_name: str, first_year: int = 2024, last_year: int = 2030
) -> tuple[datetime, ...]:
    """UTC instants at which the zone's offset changes (minute precision)."""
    tz = ZoneInfo(tz_name)
    found = []
    t = utc(first_year, 1, 1)
    stop = utc(last_year + 1, 1, 1)
    while t < stop:
        nxt = t + timedelta(days=1)
        if t.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            lo, hi = t, nxt
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid == lo:
                    break
                if mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        t = nxt
    return tuple(found)


def test_oracle_sanity_on_known_instants() -> None:
    tz = ZoneInfo(STOCKHOLM)
    assert oracle_due(date(2026, 3, 29), time(2, 30), tz) == utc(2026, 3, 29, 1, 30)
    assert oracle_due(date(2026, 10, 25), time(2, 30), tz) == utc(2026, 10, 25, 0, 30)
    assert oracle_due(date(2026, 7, 1), time(8, 0), tz) == utc(2026, 7, 1, 6, 0)
    assert utc(2026, 3, 29, 1, 0) in transitions(STOCKHOLM)
    assert utc(2026, 10, 25, 1, 0) in transitions(STOCKHOLM)
    assert transitions("UTC") == ()


# --- fixed examples --------------------------------------------------------------------------


def test_ordinary_winter_and_summer_days_in_stockholm() -> None:
    s = sched(STOCKHOLM, ("08:00", 45), ("20:00", 45))
    winter = expand(s, utc(2026, 11, 23), utc(2026, 11, 24))
    assert [x.due_at for x in winter] == [utc(2026, 11, 23, 7), utc(2026, 11, 23, 19)]
    summer = expand(s, utc(2026, 7, 1), utc(2026, 7, 2))
    assert [x.due_at for x in summer] == [utc(2026, 7, 1, 6), utc(2026, 7, 1, 18)]
    assert all(x.due_at.tzinfo is UTC and x.window_end.tzinfo is UTC for x in winter + summer)


@pytest.mark.parametrize(
    ("day", "local", "expected_utc", "expected_local"),
    [
        # 2026-03-29: 02:00 CET → 03:00 CEST; 02:30 does not exist.
        (date(2026, 3, 29), "02:30", utc(2026, 3, 29, 1, 30), "03:30"),
        (date(2026, 3, 29), "02:00", utc(2026, 3, 29, 1, 0), "03:00"),
        (date(2026, 3, 29), "02:59", utc(2026, 3, 29, 1, 59), "03:59"),
        (date(2026, 3, 29), "01:59", utc(2026, 3, 29, 0, 59), "01:59"),
        (date(2026, 3, 29), "03:00", utc(2026, 3, 29, 1, 0), "03:00"),
        (date(2026, 3, 29), "08:00", utc(2026, 3, 29, 6, 0), "08:00"),
        # 2026-10-25: 03:00 CEST → 02:00 CET; 02:30 happens twice, the first one counts.
        (date(2026, 10, 25), "02:30", utc(2026, 10, 25, 0, 30), "02:30"),
        (date(2026, 10, 25), "02:00", utc(2026, 10, 25, 0, 0), "02:00"),
        (date(2026, 10, 25), "02:59", utc(2026, 10, 25, 0, 59), "02:59"),
        (date(2026, 10, 25), "03:00", utc(2026, 10, 25, 2, 0), "03:00"),
        (date(2026, 10, 25), "08:00", utc(2026, 10, 25, 7, 0), "08:00"),
        # 2027-03-28: spring forward again.
        (date(2027, 3, 28), "02:30", utc(2027, 3, 28, 1, 30), "03:30"),
        (date(2027, 3, 28), "08:00", utc(2027, 3, 28, 6, 0), "08:00"),
    ],
)
def test_stockholm_dst_days(
    day: date, local: str, expected_utc: datetime, expected_local: str
) -> None:
    s = sched(STOCKHOLM, (local, 45))
    slots = expand(
        s,
        datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=1),
        datetime.combine(day, time(0), tzinfo=UTC) + timedelta(days=2),
    )
    on_day = [x for x in slots if x.local_date == day]
    assert len(on_day) == 1
    (slot,) = on_day
    assert slot.due_at == expected_utc
    assert slot.due_at.astimezone(ZoneInfo(STOCKHOLM)).strftime("%H:%M") == expected_local
    assert slot.local_time == time.fromisoformat(local)
    assert slot.window_end - slot.due_at == timedelta(minutes=45)


def test_window_is_real_minutes_across_the_fall_back_hour() -> None:
    # Due at the first 02:30; a 45-minute window ends at 01:15 UTC = 02:15 CET (second 02:xx).
    (slot,) = expand(sched(STOCKHOLM, ("02:30", 45)), utc(2026, 10, 25), utc(2026, 10, 25, 12))
    assert slot.due_at == utc(2026, 10, 25, 0, 30)
    assert slot.window_end == utc(2026, 10, 25, 1, 15)
    assert slot.window_end.astimezone(ZoneInfo(STOCKHOLM)).strftime("%H:%M%z") == "02:15+0100"


def test_window_is_real_minutes_across_the_spring_forward_hour() -> None:
    (slot,) = expand(sched(STOCKHOLM, ("01:45", 30)), utc(2026, 3, 29), utc(2026, 3, 29, 12))
    assert slot.due_at == utc(2026, 3, 29, 0, 45)
    assert slot.window_end == utc(2026, 3, 29, 1, 15)  # 03:15 CEST: 30 real minutes later
    assert slot.window_end.astimezone(ZoneInfo(STOCKHOLM)).strftime("%H:%M") == "03:15"


@pytest.mark.parametrize(
    ("tz", "day", "local", "expected_utc"),
    [
        # Sydney, autumn (fall back, 03:00 AEDT → 02:00 AEST): 02:30 twice, first is AEDT.
        ("Australia/Sydney", date(2026, 4, 5), "02:30", utc(2026, 4, 4, 15, 30)),
        # Sydney, spring (02:00 AEST → 03:00 AEDT): 02:30 missing → 03:30 AEDT.
        ("Australia/Sydney", date(2026, 10, 4), "02:30", utc(2026, 10, 3, 16, 30)),
        # Santiago changes at midnight: 2026-04-04 24:00 -03 → 23:00 -04, so 23:30 is twice.
        ("America/Santiago", date(2026, 4, 4), "23:30", utc(2026, 4, 5, 2, 30)),
        ("America/Santiago", date(2026, 4, 5), "00:30", utc(2026, 4, 5, 4, 30)),
        # 2026-09-06 00:00 -04 → 01:00 -03: 00:30 missing → 01:30 -03.
        ("America/Santiago", date(2026, 9, 6), "00:30", utc(2026, 9, 6, 4, 30)),
        # Chatham: 02:45 +12:45 → 03:45 +13:45 on 2026-09-27; 03:00 missing → 04:00.
        ("Pacific/Chatham", date(2026, 9, 27), "03:00", utc(2026, 9, 26, 14, 15)),
    ],
)
def test_southern_hemisphere_and_odd_zones(
    tz: str, day: date, local: str, expected_utc: datetime
) -> None:
    slots = expand(
        sched(tz, (local, 60)),
        datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=2),
        datetime.combine(day, time(0), tzinfo=UTC) + timedelta(days=2),
    )
    (slot,) = [x for x in slots if x.local_date == day]
    assert slot.due_at == expected_utc
    assert slot.window_end == expected_utc + timedelta(hours=1)
    assert local_instant(day, time.fromisoformat(local), ZoneInfo(tz)) == expected_utc


@pytest.mark.parametrize(
    ("tz", "start"),
    [
        (STOCKHOLM, date(2026, 3, 25)),
        (STOCKHOLM, date(2026, 10, 21)),
        (STOCKHOLM, date(2027, 3, 24)),
        ("Australia/Sydney", date(2026, 4, 1)),
        ("Australia/Sydney", date(2026, 10, 1)),
        ("America/Santiago", date(2026, 4, 1)),
        ("America/Santiago", date(2026, 9, 3)),
    ],
)
def test_one_slot_per_dose_per_local_day_through_a_dst_week(tz: str, start: date) -> None:
    doses = (("00:30", 30), ("02:30", 45), ("08:00", 45), ("20:00", 45), ("23:30", 120))
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, time(0), tzinfo=zone).astimezone(UTC)
    hi = datetime.combine(start + timedelta(days=7), time(0), tzinfo=zone).astimezone(UTC)
    slots = expand(sched(tz, *doses), lo, hi)
    days = [start + timedelta(days=i) for i in range(7)]
    for day in days:
        for t, window in doses:
            found = [s for s in slots if s.local_date == day and s.local_time.isoformat()[:5] == t]
            assert len(found) == 1, (day, t)
            assert found[0].window_end - found[0].due_at == timedelta(minutes=window)
    assert len(slots) == 7 * len(doses)
    assert {s.local_date for s in slots} == set(days)


def test_valid_from_is_respected() -> None:
    s = sched(STOCKHOLM, ("08:00", 45), valid_from=date(2026, 11, 25))
    slots = expand(s, utc(2026, 11, 20), utc(2026, 11, 28))
    assert [x.local_date for x in slots] == [
        date(2026, 11, 25),
        date(2026, 11, 26),
        date(2026, 11, 27),
    ]


def test_valid_until_is_inclusive_last_day() -> None:
    s = sched(
        STOCKHOLM, ("08:00", 45), valid_from=date(2026, 11, 20), valid_until=date(2026, 11, 22)
    )
    slots = expand(s, utc(2026, 11, 1), utc(2026, 12, 1))
    assert [x.local_date for x in slots] == [
        date(2026, 11, 20),
        date(2026, 11, 21),
        date(2026, 11, 22),
    ]


def test_bounds_are_half_open() -> None:
    s = sched(STOCKHOLM, ("08:00", 45))
    due = utc(2026, 11, 23, 7)
    assert [x.due_at for x in expand(s, due, due + timedelta(days=1))] == [due]
    assert expand(s, due - timedelta(days=1) + timedelta(seconds=1), due) == []
    assert expand(s, due, due) == []


def test_empty_schedule_and_empty_range() -> None:
    assert expand(sched(STOCKHOLM), utc(2026, 1, 1), utc(2026, 2, 1)) == []
    assert expand(sched(STOCKHOLM, ("08:00", 45)), utc(2026, 2, 1), utc(2026, 1, 1)) == []


def test_naive_bounds_are_refused() -> None:
    s = sched(STOCKHOLM, ("08:00", 45))
    with pytest.raises(ValueError, match="timezone-aware"):
        expand(s, datetime(2026, 1, 1), utc(2026, 1, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        expand(s, utc(2026, 1, 1), datetime(2026, 1, 2))


def test_bounds_in_another_zone_mean_the_same_instants() -> None:
    s = sched(STOCKHOLM, ("08:00", 45), ("20:00", 45))
    ny = ZoneInfo("America/New_York")
    a = expand(s, utc(2026, 11, 23, 5), utc(2026, 11, 25, 5))
    b = expand(s, utc(2026, 11, 23, 5).astimezone(ny), utc(2026, 11, 25, 5).astimezone(ny))
    assert a == b
    assert len(a) == 4


def test_two_wall_times_in_one_gap_land_on_the_same_instant() -> None:
    """Documents a consequence of the gap rule: 02:30 and 03:30 both mean 01:30 UTC on 03-29.

    ``expand`` returns both (one per dose, as promised); the database's UNIQUE (dispenser_id,
    due_at) with ON CONFLICT DO NOTHING then keeps only one of them.
    """
    slots = expand(
        sched(STOCKHOLM, ("02:30", 30), ("03:30", 90)), utc(2026, 3, 29), utc(2026, 3, 29, 12)
    )
    assert [s.due_at for s in slots] == [utc(2026, 3, 29, 1, 30)] * 2
    assert sorted(s.window_end - s.due_at for s in slots) == [
        timedelta(minutes=30),
        timedelta(minutes=90),
    ]


# --- properties ------------------------------------------------------------------------------

dose_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))
dose_lists = st.lists(
    st.builds(DoseTime, dose_times, st.integers(1, 240)),
    min_size=1,
    max_size=4,
    unique_by=lambda d: d.time,
)


@st.composite
def ranges(draw: st.DrawFn, tz_name: str) -> tuple[datetime, datetime]:
    points = transitions(tz_name)
    near_transition = draw(st.booleans())
    if points and near_transition:
        # Around a transition, so the range contains or touches a DST change.
        pivot = draw(st.sampled_from(points))
        start = pivot - timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    else:
        start = utc(2024, 1, 1) + timedelta(minutes=draw(st.integers(0, 6 * 365 * 24 * 60)))
    length = timedelta(minutes=draw(st.integers(1, 5 * 24 * 60)))
    return start, start + length


@st.composite
def cases(draw: st.DrawFn) -> tuple[Schedule, datetime, datetime]:
    tz_name = draw(st.sampled_from(ZONES))
    start, end = draw(ranges(tz_name))
    valid_from = start.date() + timedelta(days=draw(st.integers(-3, 3)))
    doses = tuple(draw(dose_lists))
    return Schedule(tz_name, doses, valid_from), start, end


def _dst_example(tz: str, day: date) -> tuple[Schedule, datetime, datetime]:
    """The named daylight-saving days, always run: doses in the gap/repeat and around it."""
    doses = ("01:30", 45), ("02:00", 30), ("02:30", 45), ("03:00", 240), ("08:00", 45)
    start = datetime.combine(day, time(), tzinfo=UTC) - timedelta(days=1)
    return sched(tz, *doses), start, start + timedelta(days=3)


@settings(max_examples=300, deadline=None)
@given(cases())
@example(_dst_example(STOCKHOLM, date(2026, 3, 29)))
@example(_dst_example(STOCKHOLM, date(2026, 10, 25)))
@example(_dst_example(STOCKHOLM, date(2027, 3, 28)))
@example(_dst_example("Australia/Sydney", date(2026, 4, 5)))
@example(_dst_example("Australia/Sydney", date(2026, 10, 4)))
def test_expand_matches_the_oracle(case: tuple[Schedule, datetime, datetime]) -> None:
    schedule, start, end = case
    tz = ZoneInfo(schedule.timezone)
    slots = expand(schedule, start, end)

    # Sorted, within [start, end), UTC, after valid_from.
    assert [s.due_at for s in slots] == sorted(s.due_at for s in slots)
    assert all(start <= s.due_at < end for s in slots)
    assert all(s.due_at.utcoffset() == timedelta(0) for s in slots)
    assert all(s.local_date >= schedule.valid_from for s in slots)

    # Exactly the (day, dose) pairs the oracle places in the range, each once.
    windows = {d.time: d.window_min for d in schedule.doses}
    got = [(s.local_date, s.local_time) for s in slots]
    assert len(got) == len(set(got))
    first = start.astimezone(tz).date() - timedelta(days=2)
    last = end.astimezone(tz).date() + timedelta(days=2)
    expected = set()
    day = first
    while day <= last:
        if day >= schedule.valid_from:
            for dose in schedule.doses:
                if start <= oracle_due(day, dose.time, tz) < end:
                    expected.add((day, dose.time))
        day += timedelta(days=1)
    assert set(got) == expected

    for s in slots:
        assert s.due_at == oracle_due(s.local_date, s.local_time, tz)
        assert s.window_end - s.due_at == timedelta(minutes=windows[s.local_time])
        # The slot shows its dose time, or (in a gap) a later time by less than the gap.
        shown = s.due_at.astimezone(tz)
        wall = datetime.combine(s.local_date, s.local_time)
        shift = shown.replace(tzinfo=None) - wall
        assert timedelta(0) <= shift <= timedelta(hours=2)


@settings(max_examples=200, deadline=None)
@given(
    tz_name=st.sampled_from(ZONES),
    at=dose_times,
    data=st.data(),
)
def test_local_instant_round_trips_unless_in_a_gap(
    tz_name: str, at: time, data: st.DataObject
) -> None:
    points = transitions(tz_name)
    if points:
        pivot = data.draw(st.sampled_from(points))
        day = (
            (pivot + timedelta(days=data.draw(st.integers(-1, 1))))
            .astimezone(ZoneInfo(tz_name))
            .date()
        )
    else:
        day = date(2026, 1, 1) + timedelta(days=data.draw(st.integers(0, 365)))
    tz = ZoneInfo(tz_name)
    due = local_instant(day, at, tz)
    assert due == oracle_due(day, at, tz)
    wall = datetime.combine(day, at)
    shown = due.astimezone(tz).replace(tzinfo=None)
    exists = any(
        (wall.replace(tzinfo=UTC) - off).astimezone(tz).replace(tzinfo=None) == wall
        for off in _offsets_near(wall, tz)
    )
    assert (shown == wall) is exists
