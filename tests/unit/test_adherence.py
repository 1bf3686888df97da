"""The adherence definitions, as properties: bounded, suspended never counts, order-free."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dosewatch.domain.adherence import (
    DayCounts,
    Figures,
    Slot,
    counted_state,
    figures,
    local_day,
    pct,
    rollup,
    under_threshold,
)
from dosewatch.domain.slots import SlotState

counts = st.builds(DayCounts, *(st.integers(0, 50) for _ in range(6)))
patient_days = st.lists(
    st.tuples(st.integers(1, 5), st.dates(date(2026, 1, 1), date(2026, 1, 10)), counts),
    max_size=60,
)


@given(patient_days)
def test_every_figure_stays_within_0_and_100(rows: list[tuple[int, date, DayCounts]]) -> None:
    f = figures(rows)
    for value in (f.taking_adherence_pct, f.timing_adherence_pct, f.correct_dosing_days_pct):
        assert value is None or 0.0 <= value <= 100.0
    assert f.timing_adherence_pct is None or f.timing_adherence_pct <= f.taking_adherence_pct  # type: ignore[operator]
    assert 0 <= f.correct_dosing_days <= f.monitored_days


@given(
    patient_days,
    st.lists(
        st.tuples(
            st.integers(1, 5), st.dates(date(2026, 1, 1), date(2026, 1, 10)), st.integers(1, 20)
        ),
        max_size=20,
    ),
)
def test_suspended_slots_never_count(
    rows: list[tuple[int, date, DayCounts]], extra: list[tuple[int, date, int]]
) -> None:
    """Adding suspended slots to any days changes no figure but the suspended count."""
    before = figures(rows)
    after = figures(rows + [(p, d, DayCounts(suspended=n)) for p, d, n in extra])
    assert after.counts.suspended == before.counts.suspended + sum(n for *_, n in extra)
    assert (
        after.expected,
        after.taking_adherence_pct,
        after.timing_adherence_pct,
        after.correct_dosing_days,
        after.monitored_days,
    ) == (
        before.expected,
        before.taking_adherence_pct,
        before.timing_adherence_pct,
        before.correct_dosing_days,
        before.monitored_days,
    )


@given(patient_days, st.randoms())
def test_figures_do_not_depend_on_order(rows: list[tuple[int, date, DayCounts]], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert figures(shuffled) == figures(rows)


def test_unknown_counts_as_not_taken_and_is_shown_on_its_own() -> None:
    f = figures([(1, date(2026, 1, 1), DayCounts(taken=3, unknown=1))])
    assert (f.expected, f.counts.unknown, f.taking_adherence_pct) == (4, 1, 75.0)
    assert f.correct_dosing_days == 0 and f.monitored_days == 1


def test_a_day_with_a_pending_dose_is_not_monitored_yet() -> None:
    f = figures([(1, date(2026, 1, 1), DayCounts(taken=2, pending=1))])
    assert (f.monitored_days, f.expected, f.taking_adherence_pct) == (0, 2, 100.0)


def test_two_dispensers_of_one_patient_make_one_patient_day() -> None:
    day = date(2026, 1, 1)
    f = figures([(1, day, DayCounts(taken=2)), (1, day, DayCounts(missed=1))])
    assert (f.monitored_days, f.correct_dosing_days, f.patients) == (1, 0, 1)


def test_an_absence_suspends_all_but_a_take() -> None:
    assert counted_state("missed", True) is SlotState.SUSPENDED
    assert counted_state("unknown", True) is SlotState.SUSPENDED
    assert counted_state("taken_late", True) is SlotState.TAKEN_LATE
    assert counted_state("missed", False) is SlotState.MISSED


def test_local_days_follow_daylight_saving() -> None:
    # 23:30 local on the fall-back day (25 h long) and 00:30 the next day.
    assert local_day(datetime(2026, 10, 25, 22, 30, tzinfo=UTC), "Europe/Stockholm") == date(
        2026, 10, 25
    )
    assert local_day(datetime(2026, 10, 25, 23, 30, tzinfo=UTC), "Europe/Stockholm") == date(
        2026, 10, 26
    )
    # Spring forward: 00:30 CEST on 30 March is 22:30 UTC on the 29th.
    assert local_day(datetime(2026, 3, 29, 22, 30, tzinfo=UTC), "Europe/Stockholm") == date(
        2026, 3, 30
    )
    with pytest.raises(ValueError):
        local_day(datetime(2026, 1, 1), "Europe/Stockholm")


def test_a_window_across_midnight_belongs_to_its_due_day() -> None:
    due = datetime(2026, 1, 10, 22, 30, tzinfo=UTC)  # 23:30 local, window to 00:30
    days = rollup([Slot("D", due, SlotState.TAKEN, "Europe/Stockholm")])
    assert days == {("D", date(2026, 1, 10)): DayCounts(taken=1)}


def test_under_threshold_uses_the_exact_fraction() -> None:
    f = Figures(DayCounts(taken=18999, missed=1001), 0, 0, 1)  # 94.995 %, shown as 95.0
    assert f.taking_adherence_pct == 95.0 and under_threshold(f, 95.0)
    assert not under_threshold(Figures(DayCounts(), 0, 0, 0), 95.0)


def test_pct_is_none_without_a_denominator() -> None:
    assert pct(0, 0) is None and pct(1, 3) == 33.33


@given(st.lists(st.tuples(st.integers(0, 200), st.sampled_from(list(SlotState))), max_size=50))
def test_rollup_is_a_sum_of_one_slot_per_state(slots: list[tuple[int, SlotState]]) -> None:
    start = datetime(2026, 3, 28, tzinfo=UTC)
    items = [Slot("D", start + timedelta(hours=h), s, "Europe/Stockholm") for h, s in slots]
    days = rollup(items)
    total = sum(days.values(), DayCounts())
    assert sum(getattr(total, s.value) for s in SlotState) == len(items)
