"""Planning: schedule versions effective from a moment, plus absences → the slots to watch.

The fixed examples pin the rules one by one. The property tests compare :func:`plan` with an
oracle that does not use :func:`expand` or ``fold``: it places every (local day, dose) with
``oracle_due`` from ``test_schedule``, keeps those whose due time lies in ``[start, end)`` and
whose version is the one in force at that instant (the latest ``effective_from`` at or before
it), and merges doses that land on the same instant.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dosewatch.domain.planning import Absence, Planned, Version, plan
from dosewatch.domain.schedule import DoseTime, Schedule, expand
from tests.unit.test_schedule import oracle_due, transitions, utc

STOCKHOLM = "Europe/Stockholm"
SYDNEY = "Australia/Sydney"
SE = ZoneInfo(STOCKHOLM)


def local(day: date, hh_mm: str, tz: str = STOCKHOLM) -> datetime:
    """The UTC instant of an *existing* wall-clock time (for building expectations)."""
    return datetime.combine(day, time.fromisoformat(hh_mm), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def dose(
    hh_mm: str,
    window: int = 45,
    *,
    weekdays: set[int] | None = None,
    label: str | None = None,
    critical: bool = False,
) -> DoseTime:
    return DoseTime(
        time.fromisoformat(hh_mm),
        window,
        frozenset(weekdays) if weekdays is not None else None,
        label,
        critical,
    )


def schedule(
    *doses: DoseTime, tz: str = STOCKHOLM, valid_from: date = date(2020, 1, 1)
) -> Schedule:
    return Schedule(tz, tuple(doses), valid_from)


def summary(planned: list[Planned]) -> list[tuple[datetime, int, str]]:
    """(due, version, local HH:MM) per slot: compact expectations."""
    return [
        (p.slot.due_at, p.version, p.slot.due_at.astimezone(SE).strftime("%H:%M")) for p in planned
    ]


V1 = Version(1, utc(2026, 1, 1), schedule(dose("08:00"), dose("20:00")))
# Version 2 takes effect at 12:00 Stockholm on Monday 2026-11-23 and moves the evening dose.
V2 = Version(2, utc(2026, 11, 23, 11), schedule(dose("08:00", 30), dose("21:00", 60)))


# --- versions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (utc(2026, 11, 20), utc(2026, 11, 27)),
        (utc(2026, 3, 26), utc(2026, 4, 1)),  # spring forward
        (utc(2026, 10, 22), utc(2026, 10, 28)),  # fall back
        (utc(2026, 11, 23, 7), utc(2026, 11, 23, 19)),  # bounds exactly on due times
    ],
)
def test_one_version_plans_exactly_what_expand_does(start: datetime, end: datetime) -> None:
    s = schedule(dose("02:30", 30), dose("08:00"), dose("20:00", 90), dose("23:30", 120))
    planned = plan([Version(1, utc(2020, 1, 1), s)], [], start, end)
    assert [p.slot for p in planned] == expand(s, start, end)
    assert {(p.version, p.absence_id, p.state) for p in planned} == {(1, None, "pending")}


def test_a_version_effective_at_noon_keeps_the_morning_and_replans_the_evening() -> None:
    planned = plan([V1, V2], [], utc(2026, 11, 22), utc(2026, 11, 25))
    assert summary(planned) == [
        (utc(2026, 11, 22, 7), 1, "08:00"),
        (utc(2026, 11, 22, 19), 1, "20:00"),
        (utc(2026, 11, 23, 7), 1, "08:00"),  # due before 12:00: v1's slot, v1's window
        (utc(2026, 11, 23, 20), 2, "21:00"),  # v2's evening; v1's 20:00 is gone
        (utc(2026, 11, 24, 7), 2, "08:00"),
        (utc(2026, 11, 24, 20), 2, "21:00"),
    ]
    windows = [p.slot.window_end - p.slot.due_at for p in planned]
    assert windows == [timedelta(minutes=m) for m in (45, 45, 45, 60, 30, 60)]


def test_a_future_version_does_not_change_earlier_slots() -> None:
    start, end = utc(2026, 11, 16), utc(2026, 11, 30)
    only_v1 = plan([V1], [], start, end)
    both = plan([V1, V2], [], start, end)
    before = [p for p in both if p.slot.due_at < V2.effective_from]
    assert before == [p for p in only_v1 if p.slot.due_at < V2.effective_from]
    assert len(before) == 2 * 7 + 1
    assert all(p.version == 2 for p in both if p.slot.due_at >= V2.effective_from)
    # A period entirely before the change is planned as if v2 did not exist.
    assert plan([V1, V2], [], start, V2.effective_from) == plan([V1], [], start, V2.effective_from)


def test_versions_in_any_order_plan_the_same() -> None:
    v3 = Version(3, utc(2026, 11, 24, 12), schedule(dose("09:00", 15)))
    start, end = utc(2026, 11, 21), utc(2026, 11, 27)
    expected = plan([V1, V2, v3], [], start, end)
    for order in ([v3, V2, V1], [V2, v3, V1], [V1, v3, V2]):
        assert plan(order, [], start, end) == expected
    assert [p.version for p in expected if p.slot.due_at >= v3.effective_from] == [3, 3]
    assert {p.slot.due_at.astimezone(SE).strftime("%H:%M") for p in expected if p.version == 3} == {
        "09:00"
    }


def test_a_version_effective_exactly_at_a_due_time_plans_that_slot() -> None:
    # The change instant is the due time of v1's 20:00 dose: [effective_from, …) is v2's.
    v2 = Version(2, local(date(2026, 11, 23), "20:00"), schedule(dose("20:00", 90)))
    planned = plan([V1, v2], [], utc(2026, 11, 23), utc(2026, 11, 24))
    assert [(p.version, p.slot.window_end - p.slot.due_at) for p in planned] == [
        (1, timedelta(minutes=45)),
        (2, timedelta(minutes=90)),
    ]


def test_nothing_is_planned_before_the_first_version() -> None:
    v1 = Version(1, utc(2026, 11, 23, 11), schedule(dose("08:00"), dose("20:00")))
    planned = plan([v1], [], utc(2026, 11, 20), utc(2026, 11, 25))
    assert [p.slot.due_at for p in planned] == [
        utc(2026, 11, 23, 19),
        utc(2026, 11, 24, 7),
        utc(2026, 11, 24, 19),
    ]
    assert plan([], [], utc(2026, 11, 20), utc(2026, 11, 25)) == []


def test_the_version_in_force_is_its_own_valid_from_and_until() -> None:
    # v2 takes effect at once but its schedule only starts on Wednesday: nothing in between.
    v2 = Version(
        2,
        utc(2026, 11, 23, 11),
        Schedule(STOCKHOLM, (dose("08:00"),), date(2026, 11, 25), date(2026, 11, 26)),
    )
    planned = plan([V1, v2], [], utc(2026, 11, 23), utc(2026, 11, 30))
    assert summary(planned) == [
        (utc(2026, 11, 23, 7), 1, "08:00"),
        (utc(2026, 11, 25, 7), 2, "08:00"),
        (utc(2026, 11, 26, 7), 2, "08:00"),
    ]


# --- absences --------------------------------------------------------------------------------


def test_slots_inside_an_absence_are_suspended_but_still_planned() -> None:
    away = Absence(7, local(date(2026, 11, 23), "12:00"), local(date(2026, 11, 25), "12:00"))
    planned = plan([V1], [away], utc(2026, 11, 22), utc(2026, 11, 27))
    states = [(p.slot.due_at.astimezone(SE).strftime("%d %H:%M"), p.state) for p in planned]
    assert states == [
        ("22 08:00", "pending"),
        ("22 20:00", "pending"),
        ("23 08:00", "pending"),
        ("23 20:00", "suspended"),
        ("24 08:00", "suspended"),
        ("24 20:00", "suspended"),
        ("25 08:00", "suspended"),
        ("25 20:00", "pending"),
        ("26 08:00", "pending"),
        ("26 20:00", "pending"),
    ]
    assert all((p.absence_id == 7) == (p.state == "suspended") for p in planned)
    # The absence changes states only: the same slots as without it.
    assert [p.slot for p in planned] == [
        p.slot for p in plan([V1], [], utc(2026, 11, 22), utc(2026, 11, 27))
    ]


def test_absence_bounds_are_half_open() -> None:
    due = local(date(2026, 11, 23), "08:00")
    tick = timedelta(microseconds=1)
    cases = [
        (Absence(1, due, due + timedelta(hours=1)), 1),  # starts exactly at the due time
        (Absence(2, due - timedelta(hours=1), due), None),  # ends exactly at the due time
        (Absence(3, due - timedelta(hours=1), due + tick), 3),
        (Absence(4, due + tick, due + timedelta(hours=1)), None),
        (Absence(5, due, due), None),  # empty
    ]
    for absence, expected in cases:
        (p,) = plan([V1], [absence], due, due + timedelta(hours=1))
        assert p.slot.due_at == due
        assert p.absence_id == expected, absence
        assert p.state == ("pending" if expected is None else "suspended")


def test_each_slot_names_the_absence_that_covers_it() -> None:
    a = Absence(10, local(date(2026, 11, 23), "00:00"), local(date(2026, 11, 24), "00:00"))
    b = Absence(11, local(date(2026, 11, 24), "12:00"), local(date(2026, 11, 25), "12:00"))
    planned = plan([V1], [b, a], utc(2026, 11, 22), utc(2026, 11, 26))
    assert [p.absence_id for p in planned] == [None, None, 10, 10, None, 11, 11, None]


def test_an_absence_spanning_a_version_change_suspends_both_versions_slots() -> None:
    away = Absence(3, utc(2026, 11, 23), utc(2026, 11, 24))
    planned = plan([V1, V2], [away], utc(2026, 11, 23), utc(2026, 11, 24))
    assert [(p.version, p.absence_id) for p in planned] == [(1, 3), (2, 3)]


# --- weekdays, labels, time-critical ---------------------------------------------------------


def test_weekdays_are_the_local_date_not_the_utc_date() -> None:
    # Monday 00:30 in Stockholm is Sunday 23:30 UTC.
    monday_only = schedule(dose("00:30", weekdays={1}))
    planned = plan(
        [Version(1, utc(2026, 1, 1), monday_only)], [], utc(2026, 11, 16), utc(2026, 12, 1)
    )
    assert [p.slot.due_at for p in planned] == [
        utc(2026, 11, 22, 23, 30),
        utc(2026, 11, 29, 23, 30),
    ]
    assert {p.slot.local_date.isoweekday() for p in planned} == {1}
    assert {p.slot.due_at.isoweekday() for p in planned} == {7}


def test_weekdays_in_sydney_are_a_day_ahead_of_utc() -> None:
    # 08:00 AEDT (+11) on a Monday is 21:00 UTC on Sunday.
    s = schedule(dose("08:00", weekdays={1, 3}), tz=SYDNEY)
    planned = plan([Version(1, utc(2026, 1, 1), s)], [], utc(2026, 11, 20), utc(2026, 11, 27))
    assert [p.slot.due_at for p in planned] == [utc(2026, 11, 22, 21), utc(2026, 11, 24, 21)]
    assert [p.slot.local_date for p in planned] == [date(2026, 11, 23), date(2026, 11, 25)]


def test_weekend_and_daily_doses_mix() -> None:
    s = schedule(dose("08:00"), dose("12:00", weekdays={6, 7}))
    planned = plan([Version(1, utc(2026, 1, 1), s)], [], utc(2026, 11, 23), utc(2026, 11, 30))
    noon = [p.slot.local_date for p in planned if p.slot.local_time == time(12)]
    assert noon == [date(2026, 11, 28), date(2026, 11, 29)]
    assert len(planned) == 7 + 2


def test_label_and_time_critical_are_copied_to_the_slot() -> None:
    s = schedule(
        dose("08:00", label="Levodopa", critical=True),
        dose("20:00", label="evening"),
        dose("22:00"),
    )
    planned = plan([Version(1, utc(2026, 1, 1), s)], [], utc(2026, 11, 23), utc(2026, 11, 24))
    assert [(p.slot.label, p.slot.time_critical) for p in planned] == [
        ("Levodopa", True),
        ("evening", False),
        (None, False),
    ]


# --- daylight-saving days --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "dst_days"),
    [
        (STOCKHOLM, {date(2026, 3, 29)}),
        (STOCKHOLM, {date(2026, 10, 25)}),
        (STOCKHOLM, {date(2027, 3, 28)}),
        (SYDNEY, {date(2026, 4, 5)}),
        (SYDNEY, {date(2026, 10, 4)}),
    ],
)
def test_dst_change_day_is_true_exactly_on_the_change_day(tz: str, dst_days: set[date]) -> None:
    (day,) = dst_days
    s = schedule(dose("00:30"), dose("02:30"), dose("12:00"), dose("23:30"), tz=tz)
    zone = ZoneInfo(tz)
    start = datetime.combine(day - timedelta(days=3), time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=4), time(0), tzinfo=zone).astimezone(UTC)
    planned = plan([Version(1, utc(2020, 1, 1), s)], [], start, end)
    assert len(planned) == 7 * 4
    for p in planned:
        assert p.slot.dst_change_day is (p.slot.local_date == day), p.slot
    assert sum(p.slot.dst_change_day for p in planned) == 4


def test_ordinary_days_are_not_dst_change_days() -> None:
    s = schedule(dose("08:00"))
    planned = plan([Version(1, utc(2020, 1, 1), s)], [], utc(2026, 4, 1), utc(2026, 10, 20))
    assert len(planned) > 190
    assert not any(p.slot.dst_change_day for p in planned)


# --- two doses on one instant ----------------------------------------------------------------


def test_two_doses_in_the_spring_gap_become_one_slot() -> None:
    """02:30 does not exist on 2026-03-29 and moves to 03:30, where the other dose is."""
    s = schedule(
        dose("02:30", 30, label="night"),
        dose("03:30", 90, label="early", critical=True),
    )
    planned = plan([Version(1, utc(2020, 1, 1), s)], [], utc(2026, 3, 28), utc(2026, 3, 30))
    on_29 = [p for p in planned if p.slot.local_date == date(2026, 3, 29)]
    (p,) = on_29
    assert p.slot.due_at == utc(2026, 3, 29, 1, 30)
    assert p.slot.window_end == utc(2026, 3, 29, 3, 0)  # the 90-minute window wins
    assert p.slot.time_critical is True
    assert p.slot.label == "night + early"
    assert p.slot.dst_change_day is True
    assert p.version == 1 and p.state == "pending"
    # The day before, the same two doses are two slots an hour apart.
    on_28 = [p for p in planned if p.slot.local_date == date(2026, 3, 28)]
    assert [x.slot.due_at for x in on_28] == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 28, 2, 30)]
    assert [x.slot.label for x in on_28] == ["night", "early"]
    assert [x.slot.time_critical for x in on_28] == [False, True]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ((None, None), None),
        (("night", None), "night"),
        ((None, "early"), "early"),
        (("pill", "pill"), "pill"),  # the same label is not repeated
    ],
)
def test_merged_labels(labels: tuple[str | None, str | None], expected: str | None) -> None:
    s = schedule(dose("02:30", 60, label=labels[0]), dose("03:30", 20, label=labels[1]))
    (p,) = plan([Version(1, utc(2020, 1, 1), s)], [], utc(2026, 3, 29), utc(2026, 3, 29, 6))
    assert p.slot.label == expected
    assert p.slot.window_end - p.slot.due_at == timedelta(minutes=60)
    assert p.slot.time_critical is False


def test_merge_in_sydneys_spring_gap_and_inside_an_absence() -> None:
    s = schedule(dose("02:15", 30, critical=True), dose("03:15", 30), tz=SYDNEY)
    due = utc(2026, 10, 3, 16, 15)  # 03:15 AEDT on 2026-10-04
    away = Absence(9, due - timedelta(hours=1), due + timedelta(hours=1))
    planned = plan(
        [Version(1, utc(2020, 1, 1), s)], [away], due - timedelta(hours=6), due + timedelta(hours=6)
    )
    (p,) = planned
    assert (p.slot.due_at, p.slot.time_critical, p.absence_id) == (due, True, 9)
    assert p.state == "suspended"


# --- properties ------------------------------------------------------------------------------

PLAN_ZONES = (STOCKHOLM, SYDNEY, "America/New_York", "UTC")
# A zone and a day the range is drawn around: mostly daylight-saving days of that zone.
PIVOTS = (
    (STOCKHOLM, date(2026, 3, 29)),
    (STOCKHOLM, date(2026, 10, 25)),
    (STOCKHOLM, date(2027, 3, 28)),
    (STOCKHOLM, date(2026, 11, 23)),
    (SYDNEY, date(2026, 4, 5)),
    (SYDNEY, date(2026, 10, 4)),
    ("America/New_York", date(2026, 3, 8)),
    ("America/New_York", date(2026, 11, 1)),
    ("UTC", date(2026, 3, 29)),
)
# Times near the transitions (and two that collide in a spring gap) plus any minute.
TRICKY_TIMES = [time(h, m) for h, m in ((0, 30), (2, 0), (2, 30), (3, 0), (3, 30), (23, 30))]
dose_times = st.one_of(
    st.sampled_from(TRICKY_TIMES), st.builds(time, st.integers(0, 23), st.integers(0, 59))
)
LABELS = (None, "morning", "evening", "Levodopa")
doses_st = st.builds(
    DoseTime,
    dose_times,
    st.integers(1, 240),
    st.one_of(st.none(), st.none(), st.frozensets(st.integers(1, 7), min_size=1)),
    st.sampled_from(LABELS),
    st.booleans(),
)


@st.composite
def planning_cases(
    draw: st.DrawFn,
) -> tuple[list[Version], list[Absence], datetime, datetime]:
    tz, pivot = draw(st.sampled_from(PIVOTS))
    start = datetime.combine(pivot, time(0), tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(-2 * 24 * 60, 24 * 60))
    )
    short = draw(st.sampled_from((False, False, False, True)))  # a few hours, or 1-4 days
    length = draw(st.integers(0, 6 * 60) if short else st.integers(24 * 60, 4 * 24 * 60))
    end = start + timedelta(minutes=length)
    # 1-3 versions, effective_from ascending (ties allowed), anywhere in or a bit before the range.
    span = int((end - start).total_seconds() // 60)
    offsets = sorted(draw(st.lists(st.integers(-2 * 24 * 60, span), min_size=1, max_size=3)))
    versions = []
    for number, minutes in enumerate(offsets, start=1):
        effective = start + timedelta(minutes=minutes)
        zone = draw(st.sampled_from((tz, tz, tz, *PLAN_ZONES)))
        doses = tuple(draw(st.lists(doses_st, min_size=1, max_size=4, unique_by=lambda d: d.time)))
        if draw(st.booleans()):
            # 02:mm and 03:mm: one instant on a spring-forward day (gap 02:00-03:00 local).
            mm = draw(st.integers(0, 59))
            pair = tuple(replace(draw(doses_st), time=time(h, mm)) for h in (2, 3))
            doses = tuple(d for d in doses if d.time not in (time(2, mm), time(3, mm))) + pair
        valid_from = effective.date() + timedelta(days=draw(st.integers(-5, 2)))
        valid_until = draw(
            st.one_of(
                st.none(),
                st.none(),
                st.integers(0, 5).map(lambda n, vf=valid_from: vf + timedelta(days=n)),
            )
        )
        versions.append(Version(number, effective, Schedule(zone, doses, valid_from, valid_until)))
    # Absences (they may overlap); their bounds are often exactly on a due time.
    dues = [p.slot.due_at for p in plan(versions, [], start, end)]
    instants = st.integers(-24 * 60, span + 60).map(lambda m: start + timedelta(minutes=m))
    bounds = st.one_of(instants, st.sampled_from(dues)) if dues else instants
    absences = []
    for i in range(draw(st.integers(0, 3))):
        a, b = sorted((draw(bounds), draw(bounds)))
        absences.append(Absence(100 + i, a, b))
    return versions, absences, start, end


def in_force(versions: list[Version], instant: datetime) -> Version | None:
    """The version with the latest effective_from at or before the instant (ties: the later)."""
    started = [v for v in versions if v.effective_from <= instant]
    return max(started, key=lambda v: (v.effective_from, v.number), default=None)


def is_dst_day(day: date, tz_name: str) -> bool:
    tz = ZoneInfo(tz_name)
    lo, hi = oracle_due(day, time(0), tz), oracle_due(day + timedelta(days=1), time(0), tz)
    return any(lo <= t < hi for t in transitions(tz_name))


def oracle(
    versions: list[Version], absences: list[Absence], start: datetime, end: datetime
) -> dict[datetime, list[tuple[Version, date, DoseTime]]]:
    """Every (version, local day, dose) due in [start, end) under the version then in force."""
    by_instant: dict[datetime, list[tuple[Version, date, DoseTime]]] = defaultdict(list)
    for v in versions:
        s = v.schedule
        tz = ZoneInfo(s.timezone)
        day = start.astimezone(tz).date() - timedelta(days=2)
        last = end.astimezone(tz).date() + timedelta(days=2)
        while day <= last:
            if day >= s.valid_from and (s.valid_until is None or day <= s.valid_until):
                for d in s.doses:
                    if d.weekdays is not None and day.isoweekday() not in d.weekdays:
                        continue
                    due = oracle_due(day, d.time, tz)
                    if start <= due < end and in_force(versions, due) is v:
                        by_instant[due].append((v, day, d))
            day += timedelta(days=1)
    return by_instant


@settings(max_examples=250, deadline=None)
@given(planning_cases(), st.randoms(use_true_random=False))
def test_plan_matches_the_oracle(
    case: tuple[list[Version], list[Absence], datetime, datetime], rnd: random.Random
) -> None:
    versions, absences, start, end = case
    planned = plan(versions, absences, start, end)
    expected = oracle(versions, absences, start, end)

    dues = [p.slot.due_at for p in planned]
    assert all(a < b for a, b in zip(dues, dues[1:], strict=False)), "strictly increasing"
    assert dues == sorted(expected)

    for p in planned:
        group = expected[p.slot.due_at]
        v = in_force(versions, p.slot.due_at)
        assert v is not None and p.version == v.number
        assert {g[0].number for g in group} == {p.version}
        window = p.slot.window_end - p.slot.due_at
        if len(group) == 1:
            (_, day, d) = group[0]
            assert window == timedelta(minutes=d.window_min)
            assert (p.slot.local_date, p.slot.local_time) == (day, d.time)
            assert (p.slot.label, p.slot.time_critical) == (d.label, d.time_critical)
        else:  # doses that landed on one instant: one slot, the longer window, stricter flags
            assert window == max(timedelta(minutes=d.window_min) for _, _, d in group)
            assert p.slot.time_critical == any(d.time_critical for _, _, d in group)
            labels = {d.label for _, _, d in group if d.label}
            assert set(p.slot.label.split(" + ") if p.slot.label else []) == labels
            assert (p.slot.local_date, p.slot.local_time) in {(day, d.time) for _, day, d in group}
        assert p.slot.dst_change_day == is_dst_day(p.slot.local_date, v.schedule.timezone)
        covering = next((a for a in absences if a.starts_at <= p.slot.due_at < a.ends_at), None)
        assert p.absence_id == (covering.id if covering else None)
        assert p.state == ("suspended" if covering else "pending")

    # Pure and idempotent; the order the versions are given in does not matter.
    assert plan(versions, absences, start, end) == planned
    shuffled = list(versions)
    rnd.shuffle(shuffled)
    assert plan(shuffled, absences, start, end) == planned


@st.composite
def split_points(
    draw: st.DrawFn, case: tuple[list[Version], list[Absence], datetime, datetime]
) -> datetime:
    versions, absences, start, end = case
    interesting = [start, end]
    interesting += [v.effective_from for v in versions if start <= v.effective_from <= end]
    interesting += [t for a in absences for t in (a.starts_at, a.ends_at) if start <= t <= end]
    interesting += [p.slot.due_at for p in plan(versions, absences, start, end)]
    span = int((end - start).total_seconds())
    return draw(
        st.one_of(
            st.sampled_from(interesting),
            st.integers(0, span).map(lambda s: start + timedelta(seconds=s)),
        )
    )


@settings(max_examples=250, deadline=None)
@given(st.data())
def test_planning_in_pieces_is_planning_at_once(data: st.DataObject) -> None:
    case = data.draw(planning_cases())
    versions, absences, a, c = case
    b = data.draw(split_points(case))
    whole = plan(versions, absences, a, c)
    assert plan(versions, absences, a, b) + plan(versions, absences, b, c) == whole
    # And in three pieces.
    b2 = data.draw(split_points((versions, absences, b, c)))
    pieces = [plan(versions, absences, lo, hi) for lo, hi in ((a, b), (b, b2), (b2, c))]
    assert [p for piece in pieces for p in piece] == whole


@settings(max_examples=100, deadline=None)
@given(planning_cases())
def test_adding_a_later_version_never_changes_earlier_slots(
    case: tuple[list[Version], list[Absence], datetime, datetime],
) -> None:
    versions, absences, start, end = case
    *earlier, last = versions  # with one version, "earlier" plans nothing, and nor may it
    with_last = plan(versions, absences, start, end)
    without = plan(earlier, absences, start, end)
    cut = last.effective_from
    assert [p for p in with_last if p.slot.due_at < cut] == [
        p for p in without if p.slot.due_at < cut
    ]


def test_oracle_agrees_on_the_fixed_example() -> None:
    planned = plan([V1, V2], [], utc(2026, 11, 22), utc(2026, 11, 25))
    assert sorted(oracle([V1, V2], [], utc(2026, 11, 22), utc(2026, 11, 25))) == [
        p.slot.due_at for p in planned
    ]
    assert is_dst_day(date(2026, 3, 29), STOCKHOLM) and not is_dst_day(date(2026, 3, 30), STOCKHOLM)
