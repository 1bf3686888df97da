"""The other report rules: periods, alarm figures, economics, insights."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dosewatch.domain import alarm_figures as af
from dosewatch.domain import insights
from dosewatch.domain.adherence import DayCounts
from dosewatch.domain.economics import EconomicsSettings, economics
from dosewatch.domain.report_period import Period, iso_week, parse_period, weeks

TODAY = date(2026, 11, 23)


def test_periods() -> None:
    assert parse_period(TODAY) == Period(date(2026, 11, 1), TODAY)
    assert parse_period(TODAY, month="2026-02") == Period(date(2026, 2, 1), date(2026, 2, 28))
    assert parse_period(TODAY, month="2026-12").end == date(2026, 12, 31)
    assert parse_period(TODAY, week="2026-W53") == Period(date(2026, 12, 28), date(2027, 1, 3))
    custom = parse_period(TODAY, start=date(2026, 1, 1), end=date(2026, 12, 31))
    assert custom.days == 365
    for bad in (
        {"month": "2026-13"},
        {"week": "2026-W54"},
        {"month": "2026-01", "week": "2026-W01"},
        {"start": date(2026, 1, 2), "end": date(2026, 1, 1)},
        {"start": TODAY},
        {"start": date(2025, 1, 1), "end": date(2026, 6, 1)},
    ):
        with pytest.raises(ValueError):
            parse_period(TODAY, **bad)  # type: ignore[arg-type]


def test_weeks_cover_the_period() -> None:
    p = Period(date(2026, 10, 1), date(2026, 10, 31))
    mondays = weeks(p)
    assert mondays[0] == date(2026, 9, 28) and mondays[-1] == date(2026, 10, 26)
    assert [iso_week(m) for m in mondays] == [f"2026-W{n}" for n in range(40, 45)]


def facts(
    opened: datetime,
    ack_s: float | None,
    res_s: float | None,
    kind: str = "missed_dose",
    last: bool = False,
) -> af.AlarmFacts:
    return af.AlarmFacts(
        1,
        kind,
        1,
        opened,
        opened + timedelta(seconds=ack_s) if ack_s is not None else None,
        opened + timedelta(seconds=res_s) if res_s is not None else None,
        "home_visit" if res_s else None,
        last,
    )


def test_nearest_rank_percentiles() -> None:
    d = af.durations([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    assert (d.count, d.median_s, d.p90_s) == (10, 50, 90)
    assert af.durations([]) == af.Durations(0, None, None)
    assert af.durations([7]).p90_s == 7


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50))
def test_median_is_within_the_observed_values(values: list[float]) -> None:
    d = af.durations(values)
    assert d.median_s in values and d.p90_s in values
    assert d.median_s is not None and d.p90_s is not None and d.median_s <= d.p90_s


def test_shifts_by_local_time_of_opening() -> None:
    tz = "Europe/Stockholm"
    assert af.shift_of(datetime(2026, 11, 23, 5, 59, tzinfo=UTC), tz) == "night"  # 06:59
    assert af.shift_of(datetime(2026, 11, 23, 6, 0, tzinfo=UTC), tz) == "day"  # 07:00
    assert af.shift_of(datetime(2026, 11, 23, 14, 0, tzinfo=UTC), tz) == "evening"  # 15:00
    assert af.shift_of(datetime(2026, 11, 23, 21, 0, tzinfo=UTC), tz) == "night"  # 22:00


def test_unacknowledged_within_15_minutes() -> None:
    t = datetime(2026, 11, 23, 2, tzinfo=UTC)
    now = t + timedelta(hours=1)
    assert af.unacknowledged_too_long(facts(t, 16 * 60, None), now)
    assert not af.unacknowledged_too_long(facts(t, 15 * 60, None), now)
    assert af.unacknowledged_too_long(facts(t, None, None), now)
    assert not af.unacknowledged_too_long(facts(t, None, None), t + timedelta(minutes=5))


def test_groups_and_rates() -> None:
    t = datetime(2026, 11, 23, 2, tzinfo=UTC)
    rows = [facts(t, 60, 600), facts(t, 120, None, "device_fault"), facts(t, None, None)]
    g = af.group_by(rows, lambda a: a.kind)
    assert [(x.key, x.alarms, x.time_to_acknowledge.count) for x in g] == [
        ("device_fault", 1, 1),
        ("missed_dose", 2, 1),
    ]
    assert af.per_100_patient_days(3, 200) == 1.5 and af.per_100_patient_days(1, 0) is None


def test_economics_as_umea_reports_it() -> None:
    s = EconomicsSettings(
        visit_anyway_share=0.25,
        minutes_per_visit=15,
        cost_per_hour_sek=400,
        dispenser_rent_sek_per_month=1000,
    )
    e = economics(doses_dispensed=8000, dispenser_days=3044, period_days=31, s=s)
    assert e.visits_avoided == 6000.0 and e.staff_hours_freed == 1500.0
    assert e.gross_saving_sek == 600000.0  # 6000 visits × 100 SEK
    # 3044 dispenser-days / 30.4375 = 100.008 dispenser-months × 1000 SEK
    assert e.dispenser_months == 100.01 and e.rent_sek == 100008.0
    assert e.net_sek == 499992.0
    assert EconomicsSettings(cost_per_visit_sek=90).visit_cost_sek == 90
    with pytest.raises(ValueError):
        EconomicsSettings(visit_anyway_share=1.5)


def test_falling_adherence() -> None:
    before = DayCounts(taken=110, missed=2)  # 98.2 %
    assert insights.falling(DayCounts(taken=50, missed=6), before) is not None  # 89.3 %
    assert insights.falling(DayCounts(taken=55, missed=1), before) is None  # 98.2 %
    assert insights.falling(DayCounts(), before) is None


def test_habitually_late_dose_and_the_suggestion() -> None:
    takes = [(70.0, True)] * 6 + [(20.0, False)] * 3
    habit = insights.late_habit(time(8, 0), takes)
    assert habit is not None
    assert (habit.takes, habit.late, habit.median_take_time, habit.suggested_time) == (
        9,
        6,
        time(9, 10),
        time(9, 15),
    )
    assert insights.late_habit(time(8, 0), takes[:5]) is None  # too few to call it a habit
    assert insights.late_habit(time(8, 0), [(10.0, False)] * 10) is None


def test_device_reasons() -> None:
    assert insights.device_reasons(3, 0, 0, False) == ["offline"]
    assert insights.device_reasons(0, 2, 3, True) == ["unknown_doses", "replays", "clock"]
    assert insights.device_reasons(2, 1, 2, False) == []
