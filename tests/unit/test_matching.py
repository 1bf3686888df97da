"""Which slot a dose event belongs to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from dosewatch.domain.matching import MATCH_TOLERANCE, SlotRef, candidate_range, match_slot

T = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
MORNING = SlotRef(1, T)
NOON = SlotRef(2, T + timedelta(hours=5))
EVENING = SlotRef(3, T + timedelta(hours=12))
DAY = [MORNING, NOON, EVENING]


def test_tolerance_is_three_hours() -> None:
    assert timedelta(hours=3) == MATCH_TOLERANCE


# --- dose_due_at given: exact match only -----------------------------------------------------


def test_dose_due_at_matches_exactly() -> None:
    assert match_slot(DAY, T + timedelta(hours=11), NOON.due_at) == NOON


def test_dose_due_at_ignores_occurred_at() -> None:
    # occurred_at is the device clock and may be far off; dose_due_at decides.
    assert match_slot(DAY, T + timedelta(days=3), MORNING.due_at) == MORNING


def test_dose_due_at_in_another_offset_is_the_same_instant() -> None:
    stockholm_winter = timezone(timedelta(hours=1))
    assert match_slot(DAY, T, T.astimezone(stockholm_winter)) == MORNING


def test_dose_due_at_with_no_exact_slot_matches_nothing() -> None:
    # One second off is no match, even though a nearest-match would find MORNING.
    assert match_slot(DAY, T, T + timedelta(seconds=1)) is None
    assert match_slot(DAY, T, T - timedelta(minutes=1)) is None
    assert match_slot([], T, T) is None


# --- no dose_due_at: nearest within tolerance ------------------------------------------------


def test_nearest_slot_wins() -> None:
    assert match_slot(DAY, T + timedelta(minutes=4), None) == MORNING
    assert match_slot(DAY, T + timedelta(hours=4), None) == NOON
    assert match_slot(DAY, T + timedelta(hours=9), None) == EVENING


def test_nearest_is_found_whatever_the_candidate_order() -> None:
    for order in (DAY, DAY[::-1], [NOON, EVENING, MORNING]):
        assert match_slot(order, T + timedelta(hours=6), None) == NOON


def test_event_before_the_slot_counts_too() -> None:
    assert match_slot(DAY, T - timedelta(minutes=20), None) == MORNING


def test_tie_goes_to_the_earlier_slot() -> None:
    a = SlotRef(10, T)
    b = SlotRef(11, T + timedelta(hours=2))
    midway = T + timedelta(hours=1)
    assert match_slot([a, b], midway, None) == a
    assert match_slot([b, a], midway, None) == a


def test_tolerance_boundary_is_inclusive() -> None:
    assert match_slot([MORNING], T + MATCH_TOLERANCE, None) == MORNING
    assert match_slot([MORNING], T - MATCH_TOLERANCE, None) == MORNING


def test_beyond_tolerance_matches_nothing() -> None:
    tick = timedelta(microseconds=1)
    assert match_slot([MORNING], T + MATCH_TOLERANCE + tick, None) is None
    assert match_slot([MORNING], T - MATCH_TOLERANCE - tick, None) is None
    # Between two slots that are both too far: nothing.
    far = [SlotRef(1, T), SlotRef(2, T + 2 * MATCH_TOLERANCE + timedelta(minutes=2))]
    assert match_slot(far, T + MATCH_TOLERANCE + timedelta(minutes=1), None) is None
    assert match_slot([], T, None) is None


def test_occurred_at_in_another_offset() -> None:
    plus_eleven = timezone(timedelta(hours=11))
    assert match_slot(DAY, (T + timedelta(hours=4)).astimezone(plus_eleven), None) == NOON


# --- candidate_range -------------------------------------------------------------------------


def test_candidate_range_with_dose_due_at_is_that_instant() -> None:
    assert candidate_range(T + timedelta(days=2), T) == (T, T)


def test_candidate_range_without_dose_due_at_is_the_tolerance() -> None:
    assert candidate_range(T, None) == (T - MATCH_TOLERANCE, T + MATCH_TOLERANCE)


# --- properties ------------------------------------------------------------------------------

offsets_min = st.integers(-10 * 60, 10 * 60)
slot_lists = st.lists(offsets_min, max_size=8, unique=True).map(
    lambda mins: [SlotRef(i, T + timedelta(minutes=m)) for i, m in enumerate(mins)]
)


@settings(max_examples=300)
@given(slots=slot_lists, event_min=offsets_min, extra_s=st.integers(0, 59), data=st.data())
def test_nearest_match_properties(
    slots: list[SlotRef], event_min: int, extra_s: int, data: st.DataObject
) -> None:
    occurred = T + timedelta(minutes=event_min, seconds=extra_s)
    chosen = match_slot(slots, occurred, None)
    within = [s for s in slots if abs(s.due_at - occurred) <= MATCH_TOLERANCE]
    if not within:
        assert chosen is None
        return
    assert chosen is not None
    best = min(abs(s.due_at - occurred) for s in within)
    assert abs(chosen.due_at - occurred) == best
    # Of the equally near ones, the earliest.
    assert chosen.due_at == min(s.due_at for s in within if abs(s.due_at - occurred) == best)
    # Order of candidates does not matter.
    assert match_slot(data.draw(st.permutations(slots)), occurred, None) == chosen
    # The caller's candidate range contains the chosen slot.
    lo, hi = candidate_range(occurred, None)
    assert lo <= chosen.due_at <= hi


@settings(max_examples=200)
@given(slots=slot_lists, due_min=offsets_min)
def test_exact_match_properties(slots: list[SlotRef], due_min: int) -> None:
    due = T + timedelta(minutes=due_min)
    chosen = match_slot(slots, T, due)
    exact = [s for s in slots if s.due_at == due]
    assert chosen == (exact[0] if exact else None)
    assert candidate_range(T, due) == (due, due)
