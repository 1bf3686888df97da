"""Sequence gaps (gateway.seqgaps): the holes between the lowest and highest seq stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dosewatch.domain.seqgaps import Gap, SeqState, apply_seqs, missing

T = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def test_in_order_leaves_no_gap() -> None:
    state = apply_seqs(None, [1, 2, 3], T)
    state = apply_seqs(state, [4, 5], T)
    assert state == SeqState(1, 5, ())


def test_a_jump_opens_a_gap_and_a_late_event_splits_it() -> None:
    state = apply_seqs(None, [10], T)
    state = apply_seqs(state, [15], T + timedelta(minutes=1))
    assert state is not None and state.gaps == (Gap(11, 14, T + timedelta(minutes=1)),)
    state = apply_seqs(state, [12], T + timedelta(minutes=2))
    assert state is not None
    # The pieces keep the time the gap was first noticed.
    assert state.gaps == (
        Gap(11, 11, T + timedelta(minutes=1)),
        Gap(13, 14, T + timedelta(minutes=1)),
    )
    state = apply_seqs(state, [11, 13, 14], T)
    assert state == SeqState(10, 15, ())


def test_an_event_below_the_lowest_opens_a_gap_above_it() -> None:
    state = apply_seqs(None, [10, 11], T)
    state = apply_seqs(state, [7], T)
    assert missing(state) == {8, 9}


def test_duplicates_and_empty_batches_change_nothing() -> None:
    state = apply_seqs(None, [1, 3], T)
    assert apply_seqs(state, [], T) == state
    assert apply_seqs(state, [1, 3, 3], T + timedelta(hours=1)) == state


@given(
    st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=60),
    st.randoms(use_true_random=False),
    st.integers(min_value=1, max_value=8),
)
def test_the_gaps_depend_only_on_which_seqs_arrived(
    seqs: list[int], rnd: object, batch: int
) -> None:
    import random

    assert isinstance(rnd, random.Random)
    shuffled = seqs[:]
    rnd.shuffle(shuffled)
    state: SeqState | None = None
    for i in range(0, len(shuffled), batch):
        state = apply_seqs(state, shuffled[i : i + batch], T + timedelta(seconds=i))
    assert state is not None
    seen = set(seqs)
    assert (state.min_seq, state.max_seq) == (min(seen), max(seen))
    assert missing(state) == set(range(min(seen), max(seen) + 1)) - seen
    # Gaps never overlap or touch a stored seq, and are in order.
    ordered = sorted(state.gaps)
    for a, b in zip(ordered, ordered[1:], strict=False):
        assert a.to_seq + 1 < b.from_seq
