"""Roster rules: who is on duty, gaps with no reachable nurse, and shifts from local wall times.

The gap property compares :func:`gaps` with a brute-force oracle that knows nothing about
merging: between two consecutive shift boundaries nothing changes, so it asks :func:`on_duty` at
the start of each such piece. The daylight-saving property checks night lengths against the EU
rule written out by hand (clocks change on the last Sunday of March and of October).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dosewatch.domain.roster import (
    COVERING_ROLES,
    Interval,
    Role,
    Shift,
    covered,
    gaps,
    on_duty,
    shift_from_local,
    total,
    unreachable_in,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
H = timedelta(hours=1)


def utc(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def night(nurse: int, role: Role = Role.PRIMARY, day: int = 23) -> Shift:
    """21:00Z–06:00Z: 22:00–07:00 in Stockholm in winter."""
    return Shift(nurse, role, utc(day, 21), utc(day + 1, 6))


# --- shifts and on_duty ----------------------------------------------------------------------


def test_a_shift_is_half_open() -> None:
    s = night(1)
    assert on_duty([s], utc(23, 21)) == [s]
    assert on_duty([s], utc(24, 5, 59)) == [s]
    assert on_duty([s], utc(24, 6)) == []  # the day shift starting at 07:00 takes over
    assert on_duty([s], utc(23, 20, 59)) == []


def test_on_duty_lists_everyone_whose_shift_covers_the_instant() -> None:
    a, b, lead = night(1), night(2, Role.BACKUP), Shift(3, Role.LEAD, utc(24, 0), utc(24, 8))
    assert on_duty([a, b, lead], utc(23, 23)) == [a, b]
    assert on_duty([a, b, lead], utc(24, 2)) == [a, b, lead]


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "words"),
    [
        (datetime(2026, 11, 23, 22), utc(24, 6), "timezone-aware"),
        (utc(24, 6), utc(24, 6), "end after"),
        (utc(24, 6), utc(23, 21), "end after"),
    ],
)
def test_a_shift_must_be_aware_and_not_empty(
    starts_at: datetime, ends_at: datetime, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        Shift(1, Role.PRIMARY, starts_at, ends_at)


# --- gaps ------------------------------------------------------------------------------------


def test_no_shifts_is_one_gap_over_the_whole_period() -> None:
    assert gaps([], utc(23), utc(24), {1}) == [(utc(23), utc(24))]
    assert covered([], utc(23), utc(24), {1}) == []


def test_a_hand_over_leaves_no_gap_and_a_missing_hour_is_flagged() -> None:
    day = Shift(1, Role.PRIMARY, utc(23, 6), utc(23, 21))
    evening = Shift(2, Role.PRIMARY, utc(23, 21), utc(24, 6))  # touches: 21:00Z hand-over
    assert gaps([day, evening], utc(23, 6), utc(24, 6), {1, 2}) == []
    assert covered([day, evening], utc(23, 6), utc(24, 6), {1, 2}) == [(utc(23, 6), utc(24, 6))]
    late = Shift(2, Role.PRIMARY, utc(23, 22), utc(24, 6))
    assert gaps([day, late], utc(23, 6), utc(24, 6), {1, 2}) == [(utc(23, 21), utc(23, 22))]


def test_a_backup_covers_but_a_lead_alone_does_not() -> None:
    backup, lead = night(2, Role.BACKUP), night(3, Role.LEAD)
    assert gaps([backup], utc(23, 21), utc(24, 6), {2, 3}) == []
    assert gaps([lead], utc(23, 21), utc(24, 6), {2, 3}) == [(utc(23, 21), utc(24, 6))]


def test_an_unreachable_nurse_leaves_a_gap_and_is_named() -> None:
    shifts = [night(1), Shift(2, Role.BACKUP, utc(24, 2), utc(24, 6))]
    found = gaps(shifts, utc(23, 21), utc(24, 6), reachable_nurse_ids={2})
    assert found == [(utc(23, 21), utc(24, 2))]
    assert unreachable_in(shifts, found[0], {2}) == [1]


def test_shifts_outside_the_period_are_clipped() -> None:
    shifts = [night(1, day=22), night(1, day=23)]  # 22→23 and 23→24 November
    assert gaps(shifts, utc(23, 0), utc(24, 0), {1}) == [(utc(23, 6), utc(23, 21))]
    assert total(covered(shifts, utc(23, 0), utc(24, 0), {1})) == 9 * H


def test_naive_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        gaps([], datetime(2026, 11, 23), utc(24), set())


BASE = utc(23)


@st.composite
def shift_lists(draw: st.DrawFn) -> list[Shift]:
    out = []
    for _ in range(draw(st.integers(0, 8))):
        start = BASE + timedelta(minutes=draw(st.integers(-600, 3 * 1440)))
        length = timedelta(minutes=draw(st.integers(1, 16 * 60)))
        role = draw(st.sampled_from(list(Role)))
        out.append(Shift(draw(st.integers(1, 5)), role, start, start + length))
    return out


def oracle_gaps(
    shifts: list[Shift], start: datetime, end: datetime, reachable: set[int]
) -> list[Interval]:
    cuts = sorted({start, end} | {t for s in shifts for t in (s.starts_at, s.ends_at)})
    cuts = [t for t in cuts if start <= t <= end]
    out: list[Interval] = []
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        staffed = any(
            s.role in COVERING_ROLES and s.nurse_id in reachable for s in on_duty(shifts, lo)
        )
        if staffed:
            continue
        if out and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


@settings(max_examples=400, deadline=None)
@given(
    shift_lists(),
    st.sets(st.integers(1, 5)),
    st.integers(-120, 2 * 1440),
    st.integers(0, 2 * 1440),
)
@example([Shift(1, Role.PRIMARY, BASE - H, BASE + H)], {1}, 0, 0)  # an empty period
@example(
    [Shift(1, Role.PRIMARY, BASE, BASE + H), Shift(2, Role.BACKUP, BASE + H, BASE + 2 * H)],
    {1, 2},
    0,
    180,
)  # a hand-over: one covered piece, then a gap
def test_gaps_and_covered_partition_the_period(
    shifts: list[Shift], reachable: set[int], from_min: int, span_min: int
) -> None:
    start = BASE + timedelta(minutes=from_min)
    end = start + timedelta(minutes=span_min)
    g, c = gaps(shifts, start, end, reachable), covered(shifts, start, end, reachable)

    # Together: sorted, non-empty, alternating, touching pieces from start to end.
    pieces = sorted([(lo, hi, "gap") for lo, hi in g] + [(lo, hi, "covered") for lo, hi in c])
    assert all(lo < hi for lo, hi, _ in pieces)
    assert all(a[2] != b[2] for a, b in zip(pieces, pieces[1:], strict=False))
    if span_min == 0:
        assert pieces == []
    else:
        assert pieces[0][0] == start and pieces[-1][1] == end
        assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    assert total(g) + total(c) == end - start

    # And each gap is exactly where nobody reachable is on duty.
    assert g == oracle_gaps(shifts, start, end, reachable)
    # Everyone reachable can only shrink the gaps; nobody reachable makes the whole period one.
    assert total(gaps(shifts, start, end, {1, 2, 3, 4, 5})) <= total(g)
    assert gaps(shifts, start, end, set()) == ([(start, end)] if span_min else [])


# --- shifts from local wall times ------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "hours", "starts_at", "ends_at"),
    [
        (date(2026, 11, 23), 9, utc(23, 21), utc(24, 6)),  # winter: UTC+1 both ends
        (date(2026, 7, 1), 9, utc(1, 20, month=7), utc(2, 5, month=7)),  # summer: UTC+2
        # Spring forward at 02:00 → 03:00 on 2026-03-29: the night is an hour shorter.
        (date(2026, 3, 28), 8, utc(28, 21, month=3), utc(29, 5, month=3)),
        # Fall back at 03:00 → 02:00 on 2026-10-25: the night is an hour longer.
        (date(2026, 10, 24), 10, utc(24, 20, month=10), utc(25, 6, month=10)),
    ],
)
def test_a_night_shift_crosses_midnight_and_dst_changes_its_length(
    day: date, hours: int, starts_at: datetime, ends_at: datetime
) -> None:
    s = shift_from_local(7, Role.PRIMARY, day, time(22), time(7), "Europe/Stockholm")
    assert (s.nurse_id, s.role, s.starts_at, s.ends_at) == (7, Role.PRIMARY, starts_at, ends_at)
    assert s.ends_at - s.starts_at == hours * H


def test_wall_times_follow_the_schedules_dst_rule() -> None:
    # 02:30 does not exist on 2026-03-29: moved forward by the gap, to 03:30 CEST (01:30Z).
    s = shift_from_local(1, Role.BACKUP, date(2026, 3, 29), time(2, 30), time(7), STOCKHOLM)
    assert s.starts_at == utc(29, 1, 30, month=3) and s.ends_at - s.starts_at == 3.5 * H
    # 02:30 exists twice on 2026-10-25: the first occurrence, 02:30 CEST (00:30Z).
    s = shift_from_local(1, Role.BACKUP, date(2026, 10, 25), time(2, 30), time(7), STOCKHOLM)
    assert s.starts_at == utc(25, 0, 30, month=10) and s.ends_at - s.starts_at == 5.5 * H
    # Equal wall times: the next day, 24 wall hours, 23 real ones on the spring-forward day.
    s = shift_from_local(1, Role.LEAD, date(2026, 3, 29), time(0), time(0), STOCKHOLM)
    assert s.ends_at - s.starts_at == 23 * H


def test_a_shift_the_dst_change_removes_is_refused() -> None:
    # 02:30 → 03:30 CEST, but 03:00 CEST is before that: no such shift that night.
    with pytest.raises(ValueError, match="does not exist in Europe/Stockholm"):
        shift_from_local(1, Role.PRIMARY, date(2026, 3, 29), time(2, 30), time(3), STOCKHOLM)


def last_sunday(year: int, month: int) -> date:
    d = date(year, month, 31)
    return d - timedelta(days=(d.isoweekday() % 7))


@settings(max_examples=300, deadline=None)
@given(st.dates(date(2020, 1, 1), date(2035, 12, 31)))
@example(date(2026, 3, 28))
@example(date(2026, 10, 24))
@example(date(2027, 3, 27))
@example(date(2027, 10, 30))
def test_stockholm_night_lengths_follow_the_eu_rule(day: date) -> None:
    s = shift_from_local(1, Role.PRIMARY, day, time(22), time(7), STOCKHOLM)
    next_day = day + timedelta(days=1)
    expected = 9 * H
    if next_day == last_sunday(day.year, 3):
        expected = 8 * H
    elif next_day == last_sunday(day.year, 10):
        expected = 10 * H
    assert s.ends_at - s.starts_at == expected


@settings(max_examples=200, deadline=None)
@given(
    st.dates(date(2020, 1, 1), date(2035, 12, 1)),
    st.integers(1, 21),
    st.sampled_from(["Europe/Stockholm", "Australia/Sydney", "America/New_York", "UTC"]),
)
@example(date(2026, 3, 25), 7, "Europe/Stockholm")
@example(date(2026, 10, 21), 7, "Europe/Stockholm")
def test_day_and_night_shifts_from_wall_times_tile_time_without_a_gap(
    first: date, days: int, zone: str
) -> None:
    """07:00–22:00 and 22:00–07:00 every local day: no gap and no overlap, DST nights too."""
    shifts = []
    for i in range(days):
        d = first + timedelta(days=i)
        shifts.append(shift_from_local(1, Role.PRIMARY, d, time(7), time(22), zone))
        shifts.append(shift_from_local(2, Role.PRIMARY, d, time(22), time(7), zone))
    start, end = shifts[0].starts_at, shifts[-1].ends_at
    assert gaps(shifts, start, end, {1, 2}) == []
    assert all(a.ends_at == b.starts_at for a, b in zip(shifts, shifts[1:], strict=False))
