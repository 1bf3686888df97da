"""Dose slot transitions: :func:`apply_event` and :func:`close_window`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dosewatch.domain.protocol import DOSE_EVENT_TYPES, EventType
from dosewatch.domain.slots import (
    CLOSED_UNTAKEN,
    OPEN_STATES,
    TAKEN_STATES,
    SlotState,
    Transition,
    apply_event,
    close_window,
)

WINDOW_END = datetime(2026, 11, 23, 7, 45, tzinfo=UTC)
BEFORE = WINDOW_END - timedelta(minutes=10)
AFTER = WINDOW_END + timedelta(minutes=10)
NON_DOSE_EVENTS = sorted(set(EventType) - DOSE_EVENT_TYPES)


def test_state_sets_partition_the_states() -> None:
    assert OPEN_STATES | CLOSED_UNTAKEN | TAKEN_STATES | {SlotState.SUSPENDED} == set(SlotState)
    assert not OPEN_STATES & CLOSED_UNTAKEN
    assert not CLOSED_UNTAKEN & TAKEN_STATES
    assert not OPEN_STATES & TAKEN_STATES


# --- apply_event, rule by rule ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("received_at", "expected"),
    [
        (BEFORE, SlotState.TAKEN),
        (WINDOW_END, SlotState.TAKEN),  # received exactly at window end still counts
        (WINDOW_END + timedelta(microseconds=1), SlotState.TAKEN_LATE),
        (AFTER, SlotState.TAKEN_LATE),
    ],
)
def test_taken_on_a_pending_slot(received_at: datetime, expected: SlotState) -> None:
    assert apply_event(SlotState.PENDING, EventType.DOSE_TAKEN, received_at, WINDOW_END) == (
        Transition(expected, opens_alarm=False, clears_alarm=False)
    )


@pytest.mark.parametrize("state", sorted(CLOSED_UNTAKEN))
@pytest.mark.parametrize(
    ("received_at", "expected"), [(BEFORE, SlotState.TAKEN), (AFTER, SlotState.TAKEN_LATE)]
)
def test_taken_on_a_missed_or_unknown_slot_clears_the_alarm(
    state: SlotState, received_at: datetime, expected: SlotState
) -> None:
    # A dose_taken received before the window ended but processed after the sweep closed the
    # slot still counts as on time: the server's receive time decides, not processing order.
    assert apply_event(state, EventType.DOSE_TAKEN, received_at, WINDOW_END) == Transition(
        expected, opens_alarm=False, clears_alarm=True
    )


def test_not_taken_on_a_pending_slot_misses_it_and_opens_an_alarm() -> None:
    for received_at in (BEFORE, WINDOW_END, AFTER):
        assert apply_event(
            SlotState.PENDING, EventType.DOSE_NOT_TAKEN, received_at, WINDOW_END
        ) == Transition(SlotState.MISSED, opens_alarm=True, clears_alarm=False)


def test_not_taken_on_a_missed_slot_changes_nothing() -> None:
    for received_at in (BEFORE, AFTER):
        assert (
            apply_event(SlotState.MISSED, EventType.DOSE_NOT_TAKEN, received_at, WINDOW_END)
            is None
        )


def test_not_taken_replayed_on_an_unknown_slot_resolves_it_to_missed_keeping_its_alarm() -> None:
    for received_at in (BEFORE, AFTER):
        assert apply_event(
            SlotState.UNKNOWN, EventType.DOSE_NOT_TAKEN, received_at, WINDOW_END
        ) == Transition(SlotState.MISSED, opens_alarm=False, clears_alarm=False)


@pytest.mark.parametrize("state", sorted(SlotState))
def test_presented_never_changes_a_slot(state: SlotState) -> None:
    for received_at in (BEFORE, AFTER):
        assert apply_event(state, EventType.DOSE_PRESENTED, received_at, WINDOW_END) is None


@pytest.mark.parametrize("state", sorted(SlotState))
@pytest.mark.parametrize("event", NON_DOSE_EVENTS)
def test_non_dose_events_never_change_a_slot(state: SlotState, event: EventType) -> None:
    assert apply_event(state, event, BEFORE, WINDOW_END) is None


@pytest.mark.parametrize("state", [SlotState.TAKEN, SlotState.SUSPENDED])
@pytest.mark.parametrize("event", sorted(EventType))
def test_taken_and_suspended_slots_are_final(state: SlotState, event: EventType) -> None:
    for received_at in (BEFORE, WINDOW_END, AFTER):
        assert apply_event(state, event, received_at, WINDOW_END) is None


@pytest.mark.parametrize("event", sorted(EventType))
def test_taken_late_changes_only_for_an_on_time_take(event: EventType) -> None:
    for received_at in (BEFORE, WINDOW_END, AFTER):
        change = apply_event(SlotState.TAKEN_LATE, event, received_at, WINDOW_END)
        if event is EventType.DOSE_TAKEN and received_at <= WINDOW_END:
            # An on-time report processed after a late one (replay, two writers): on time wins.
            assert change == Transition(SlotState.TAKEN)
        else:
            assert change is None


def test_taken_is_not_downgraded() -> None:
    assert apply_event(SlotState.TAKEN, EventType.DOSE_TAKEN, AFTER, WINDOW_END) is None
    assert apply_event(SlotState.TAKEN, EventType.DOSE_NOT_TAKEN, BEFORE, WINDOW_END) is None


def test_received_at_in_another_offset_is_compared_as_an_instant() -> None:
    plus_two = datetime.fromisoformat("2026-11-23T09:44:00+02:00")  # 07:44 UTC: on time
    change = apply_event(SlotState.PENDING, EventType.DOSE_TAKEN, plus_two, WINDOW_END)
    assert change is not None and change.new_state is SlotState.TAKEN


# --- close_window ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (WINDOW_END - timedelta(microseconds=1), None),
        (WINDOW_END, Transition(SlotState.MISSED, opens_alarm=True)),
        (AFTER, Transition(SlotState.MISSED, opens_alarm=True)),
    ],
)
def test_close_window_on_pending(now: datetime, expected: Transition | None) -> None:
    assert close_window(SlotState.PENDING, WINDOW_END, now) == expected


@pytest.mark.parametrize("state", sorted(set(SlotState) - OPEN_STATES))
def test_close_window_leaves_non_pending_slots_alone(state: SlotState) -> None:
    assert close_window(state, WINDOW_END, AFTER) is None
    assert close_window(state, WINDOW_END, BEFORE) is None


def test_close_window_then_late_dose_is_taken_late_and_clears() -> None:
    closed = close_window(SlotState.PENDING, WINDOW_END, AFTER)
    assert closed is not None and closed.opens_alarm
    late = apply_event(closed.new_state, EventType.DOSE_TAKEN, AFTER, WINDOW_END)
    assert late == Transition(SlotState.TAKEN_LATE, clears_alarm=True)


# --- order independence ----------------------------------------------------------------------
#
# A step is a dose event with the instant the server received it, or the sweep (close_window)
# run at some instant after the window ended. Each step keeps its own received_at whatever
# position it is applied in; the docstring promises the final state does not depend on order.

SWEEP = "sweep"


@dataclass(frozen=True)
class Step:
    kind: EventType | str
    at: datetime


def run(steps: list[Step], start: SlotState = SlotState.PENDING) -> SlotState:
    state = start
    for step in steps:
        if step.kind == SWEEP:
            change = close_window(state, WINDOW_END, step.at)
        else:
            assert isinstance(step.kind, EventType)
            change = apply_event(state, step.kind, step.at, WINDOW_END)
        if change is not None:
            state = change.new_state
    return state


def canonical(steps: list[Step]) -> list[Step]:
    """The order things really happen in: by receive (or sweep) instant."""
    return sorted(steps, key=lambda s: (s.at, str(s.kind)))


received = st.sampled_from([BEFORE, WINDOW_END - timedelta(seconds=1), WINDOW_END, AFTER])
dose_steps = st.builds(Step, st.sampled_from(sorted(DOSE_EVENT_TYPES)), received)
sweep_steps = st.builds(
    Step, st.just(SWEEP), st.sampled_from([WINDOW_END, AFTER, AFTER + timedelta(hours=1)])
)
start_states = st.sampled_from([SlotState.PENDING, SlotState.MISSED, SlotState.UNKNOWN])


@st.composite
def with_duplicates(draw: st.DrawFn, steps: st.SearchStrategy[Step]) -> list[Step]:
    base = draw(st.lists(steps, min_size=1, max_size=5))
    dupes = draw(st.lists(st.sampled_from(base), max_size=4))
    return base + dupes


@settings(max_examples=500, deadline=None)
@given(
    steps=with_duplicates(st.one_of(dose_steps, sweep_steps)),
    start=start_states,
    data=st.data(),
)
def test_final_state_is_order_independent(
    steps: list[Step], start: SlotState, data: st.DataObject
) -> None:
    """The docstring's promise, in general: any order of the same steps ends in the same state,
    including two *distinct* ``dose_taken`` events on either side of the window end (the
    on-time one wins whichever is applied first)."""
    shuffled = data.draw(st.permutations(steps))
    assert run(shuffled, start) == run(canonical(steps), start)


@settings(max_examples=500, deadline=None)
@given(
    steps=with_duplicates(st.one_of(dose_steps, sweep_steps)),
    start=start_states,
    data=st.data(),
)
def test_final_state_is_order_independent_when_all_takes_agree_on_lateness(
    steps: list[Step], start: SlotState, data: st.DataObject
) -> None:
    """What does hold: if every dose_taken was received on the same side of the window end
    (e.g. exact duplicates of one event), any order gives the same state."""
    takes = {s.at <= WINDOW_END for s in steps if s.kind is EventType.DOSE_TAKEN}
    if len(takes) > 1:
        late = [s for s in steps if s.kind is EventType.DOSE_TAKEN and s.at > WINDOW_END]
        steps = [s for s in steps if s not in late]  # keep only the on-time takes
    shuffled = data.draw(st.permutations(steps))
    assert run(shuffled, start) == run(canonical(steps), start)


def test_two_takes_on_either_side_of_the_window_end_must_not_depend_on_order() -> None:
    """Two distinct dose_taken events for one slot: one received 10 min before the window end,
    one 10 min after. Either order ends ``taken``: an on-time take upgrades ``taken_late``."""
    on_time = Step(EventType.DOSE_TAKEN, BEFORE)
    late = Step(EventType.DOSE_TAKEN, AFTER)
    results = {order: run(list(order)) for order in itertools.permutations([on_time, late])}
    assert set(results.values()) == {SlotState.TAKEN}, results


def test_not_taken_before_an_earlier_taken_ends_as_in_order() -> None:
    """The docstring's own example: dose_not_taken delivered ahead of an earlier dose_taken."""
    taken = Step(EventType.DOSE_TAKEN, BEFORE)
    not_taken = Step(EventType.DOSE_NOT_TAKEN, WINDOW_END)
    assert run([not_taken, taken]) == run([taken, not_taken]) == SlotState.TAKEN


def test_duplicates_change_nothing() -> None:
    for step in (
        Step(EventType.DOSE_TAKEN, BEFORE),
        Step(EventType.DOSE_TAKEN, AFTER),
        Step(EventType.DOSE_NOT_TAKEN, BEFORE),
        Step(EventType.DOSE_PRESENTED, BEFORE),
        Step(SWEEP, AFTER),
    ):
        once = run([step])
        assert run([step] * 3) == once
        # and a repeat on the resulting state is a no-op
        if step.kind == SWEEP:
            assert close_window(once, WINDOW_END, step.at) is None
        else:
            assert isinstance(step.kind, EventType)
            assert apply_event(once, step.kind, step.at, WINDOW_END) is None
