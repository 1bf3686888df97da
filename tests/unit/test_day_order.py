"""A whole day's events, in any order and with any duplication, end in the same slot states.

This is the gateway's rule end to end, as pure functions: each dose event is matched to a slot
(:func:`match_slot`, with or without ``dose_due_at``) and applied to it (:func:`apply_event`),
and the sweep closes windows (:func:`close_window`). Each event keeps the server receive time
it really had; only the order of processing changes (two gateways, a buffered device, a
redelivery after a crash). The expected result is processing in receive order.

Days are drawn around the daylight-saving changes in Stockholm (2026-03-29, 2026-10-25,
2027-03-28) and Sydney, with doses that may sit close together, so that an event without
``dose_due_at`` often has two slots in reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dosewatch.domain.matching import SlotRef, match_slot
from dosewatch.domain.protocol import EventType
from dosewatch.domain.schedule import DoseTime, PlannedSlot, Schedule, expand
from dosewatch.domain.slots import SlotState, apply_event, close_window

DAYS = [date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2026, 11, 23)]
SYDNEY_DAYS = [date(2026, 4, 5), date(2026, 10, 4), date(2026, 11, 23)]
DOSE_KINDS = [EventType.DOSE_TAKEN, EventType.DOSE_NOT_TAKEN, EventType.DOSE_PRESENTED]


@dataclass(frozen=True)
class Ev:
    kind: EventType
    occurred_at: datetime  # the device's clock
    dose_due_at: datetime | None
    received_at: datetime  # the server's clock


@dataclass(frozen=True)
class Sweep:
    at: datetime


Step = Ev | Sweep


def run(slots: list[PlannedSlot], steps: list[Step]) -> dict[datetime, SlotState]:
    states = {s.due_at: SlotState.PENDING for s in slots}
    ends = {s.due_at: s.window_end for s in slots}
    refs = [SlotRef(i, s.due_at) for i, s in enumerate(slots)]
    for step in steps:
        if isinstance(step, Sweep):
            for due, end in ends.items():
                change = close_window(states[due], end, step.at)
                if change is not None:
                    states[due] = change.new_state
            continue
        chosen = match_slot(refs, step.occurred_at, step.dose_due_at)
        if chosen is None:
            continue
        change = apply_event(
            states[chosen.due_at], step.kind, step.received_at, ends[chosen.due_at]
        )
        if change is not None:
            states[chosen.due_at] = change.new_state
    return states


def receive_order(steps: list[Step]) -> list[Step]:
    def key(s: Step) -> tuple[datetime, int, str]:
        if isinstance(s, Sweep):
            return (s.at, 1, "")
        return (s.received_at, 0, f"{s.kind}{s.occurred_at}{s.dose_due_at}")

    return sorted(steps, key=key)


@st.composite
def days(draw: st.DrawFn) -> tuple[list[PlannedSlot], list[Step]]:
    tz, day = draw(
        st.one_of(
            st.tuples(st.just("Europe/Stockholm"), st.sampled_from(DAYS)),
            st.tuples(st.just("Australia/Sydney"), st.sampled_from(SYDNEY_DAYS)),
        )
    )
    # Dose times on a 30-minute grid, including 02:00-03:30 (the gaps and repeats).
    minutes = draw(st.lists(st.integers(0, 47).map(lambda h: h * 30), min_size=1, max_size=5))
    doses = tuple(
        DoseTime(time(m // 60, m % 60), draw(st.sampled_from([15, 45, 120])))
        for m in sorted(set(minutes))
    )
    start = datetime.combine(day, time(), tzinfo=UTC) - timedelta(hours=14)
    slots = expand(Schedule(tz, doses, date(2020, 1, 1)), start, start + timedelta(hours=48))
    if not slots:
        return [], []
    lo, hi = slots[0].due_at, slots[-1].window_end + timedelta(hours=1)
    span = int((hi - lo).total_seconds() // 60)

    def instant(offset_min: int) -> datetime:
        return lo + timedelta(minutes=offset_min)

    steps: list[Step] = []
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(DOSE_KINDS))
        slot = draw(st.sampled_from(slots))
        with_due = draw(st.booleans())
        received = instant(draw(st.integers(0, span)))
        # The device clock is off by up to ±20 minutes, or the event sat in its buffer.
        skew = timedelta(minutes=draw(st.integers(-20, 20)))
        buffered = timedelta(minutes=draw(st.sampled_from([0, 0, 0, 90, 600])))
        steps.append(
            Ev(kind, received + skew - buffered, slot.due_at if with_due else None, received)
        )
    for _ in range(draw(st.integers(0, 3))):
        steps.append(Sweep(instant(draw(st.integers(0, span)))))
    return slots, steps


@settings(max_examples=400, deadline=None)
@given(day=days(), data=st.data())
def test_any_permutation_and_duplication_of_a_days_events_gives_the_same_states(
    day: tuple[list[PlannedSlot], list[Step]], data: st.DataObject
) -> None:
    slots, steps = day
    duplicated = steps + data.draw(st.lists(st.sampled_from(steps), max_size=6)) if steps else []
    shuffled = data.draw(st.permutations(duplicated))
    assert run(slots, shuffled) == run(slots, receive_order(steps))


def test_two_legacy_takes_between_close_slots_land_the_same_in_either_order() -> None:
    """The case that broke "nearest slot not yet taken": slots at 08:00 and 10:00, takes stamped
    09:55 and 09:50 by a device without dose_due_at. Nearest-slot matching sends both to 10:00
    whatever the order; 08:00 stays for the sweep."""
    slots = expand(
        Schedule(
            "Europe/Stockholm", (DoseTime(time(8), 45), DoseTime(time(10), 45)), date(2020, 1, 1)
        ),
        datetime(2026, 11, 23, tzinfo=UTC),
        datetime(2026, 11, 24, tzinfo=UTC),
    )
    at = datetime(2026, 11, 23, 8, 50, tzinfo=UTC)  # 09:50 in Stockholm
    a = Ev(EventType.DOSE_TAKEN, at, None, at)
    b = Ev(EventType.DOSE_TAKEN, at + timedelta(minutes=5), None, at + timedelta(minutes=5))
    sweep = Sweep(datetime(2026, 11, 23, 12, tzinfo=UTC))
    forward, backward = run(slots, [a, b, sweep]), run(slots, [b, a, sweep])
    assert forward == backward
    assert list(forward.values()) == [SlotState.MISSED, SlotState.TAKEN]
