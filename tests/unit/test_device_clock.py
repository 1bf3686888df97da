"""The device clock offset: a maximum over recent samples, shown and flagged, never trusted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dosewatch.domain.device_clock import KEEP, LIMIT_S, add_samples, estimate, is_off


@pytest.mark.parametrize(
    ("previous", "new", "keep", "expected"),
    [
        ([], [], 20, []),
        ([], [1.0, 2.0], 20, [1.0, 2.0]),
        ([1.0, 2.0], [3.0], 20, [1.0, 2.0, 3.0]),
        ([1.0, 2.0], [3.0, 4.0], 3, [2.0, 3.0, 4.0]),  # the oldest go first
        ([1.0], [2.0, 3.0, 4.0, 5.0], 2, [4.0, 5.0]),  # even when the new ones alone overflow
        ([1.0], [2.0], 0, []),
    ],
)
def test_add_samples_keeps_the_newest(
    previous: list[float], new: list[float], keep: int, expected: list[float]
) -> None:
    assert add_samples(previous, new, keep) == expected


def test_add_samples_does_not_change_its_input() -> None:
    previous = [1.0]
    add_samples(previous, [2.0])
    assert previous == [1.0]


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([], None),
        ([300.0], 300.0),
        ([299.2, 300.0, 298.7], 300.0),  # the message with the least delay wins
        ([-5.0, -1.5, -3.0], -1.5),  # a slow clock
        ([300.0, -3 * 86400.0], 300.0),  # an event buffered for days does not drag it down
    ],
)
def test_estimate_is_the_largest_sample(samples: list[float], expected: float | None) -> None:
    assert estimate(samples) == expected


@pytest.mark.parametrize(
    ("offset", "flagged"),
    [
        (None, False),  # nothing known: nothing to fix
        (0.0, False),
        (119.9, False),
        (LIMIT_S, False),  # exactly 2 minutes is still within the limit
        (120.1, True),
        (300.0, True),
        (-119.9, False),
        (-300.0, True),  # slow is as wrong as fast
    ],
)
def test_is_off_flags_more_than_two_minutes_either_way(offset: float | None, flagged: bool) -> None:
    assert is_off(offset) is flagged


def test_is_off_takes_another_limit() -> None:
    assert is_off(30.0, limit_s=10.0)
    assert not is_off(30.0, limit_s=60.0)


offsets = st.floats(min_value=-7 * 86400, max_value=7 * 86400, allow_nan=False)
delays = st.floats(min_value=0, max_value=7 * 86400, allow_nan=False)


@given(offset=offsets, batches=st.lists(st.lists(delays, max_size=30), max_size=10))
def test_the_estimate_never_exceeds_the_true_offset(
    offset: float, batches: list[list[float]]
) -> None:
    # Every sample is the true offset minus a delay on the way, and delays are never negative.
    samples: list[float] = []
    for batch in batches:
        samples = add_samples(samples, [offset - d for d in batch])
        assert len(samples) <= KEEP
    found = estimate(samples)
    assert found is None if not samples else found is not None and found <= offset


@given(
    offset=offsets,
    before=st.lists(delays, max_size=40),
    after=st.lists(delays, max_size=KEEP - 1),
)
def test_one_undelayed_sample_among_the_kept_ones_gives_the_true_offset(
    offset: float, before: list[float], after: list[float]
) -> None:
    samples = add_samples([offset - d for d in before], [offset])
    samples = add_samples(samples, [offset - d for d in after])
    assert len(samples) <= KEEP
    assert estimate(samples) == offset
