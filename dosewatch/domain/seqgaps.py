"""Sequence gaps per dispenser (pure).

Every event carries ``seq``, one more than the device's previous event. The gaps are the
numbers between the lowest and highest ``seq`` stored that have not been stored: events the
device may have lost (or that are still in its buffer). They depend only on *which* events
arrived, never on the order: a late event shrinks or splits the gap it falls in, and an event
below the lowest seen so far opens a gap above itself.

A gap's ``detected_at`` is when it was first noticed; the pieces of a split gap keep it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, order=True)
class Gap:
    from_seq: int
    to_seq: int
    detected_at: datetime


@dataclass(frozen=True)
class SeqState:
    min_seq: int
    max_seq: int
    gaps: tuple[Gap, ...]


def apply_seqs(state: SeqState | None, seqs: Iterable[int], now: datetime) -> SeqState | None:
    """The state after also storing ``seqs`` (which may repeat, or be already stored)."""
    new = sorted(set(seqs))
    if not new:
        return state
    if state is None:
        lo, hi = new[0], new[-1]
        gaps: list[Gap] = []
    else:
        lo, hi = min(state.min_seq, new[0]), max(state.max_seq, new[-1])
        gaps = list(state.gaps)
        if new[0] < state.min_seq:  # everything between the new low and the old low is missing
            gaps.append(Gap(new[0], state.min_seq - 1, now))
        if new[-1] > state.max_seq:
            gaps.append(Gap(state.max_seq + 1, new[-1], now))
    if state is None:
        gaps.append(Gap(lo, hi, now))
    return SeqState(lo, hi, tuple(_remove(gaps, new)))


def _remove(gaps: list[Gap], seqs: list[int]) -> list[Gap]:
    """Take each of ``seqs`` out of the gaps that contain it (``seqs`` sorted)."""
    out: list[Gap] = []
    for gap in sorted(gaps):
        start = gap.from_seq
        for s in _within(seqs, gap.from_seq, gap.to_seq):
            if s > start:
                out.append(Gap(start, s - 1, gap.detected_at))
            start = s + 1
        if start <= gap.to_seq:
            out.append(Gap(start, gap.to_seq, gap.detected_at))
    return out


def _within(seqs: list[int], lo: int, hi: int) -> list[int]:
    return seqs[bisect.bisect_left(seqs, lo) : bisect.bisect_right(seqs, hi)]


def missing(state: SeqState | None) -> set[int]:
    """Every missing seq (for tests and small states)."""
    if state is None:
        return set()
    return {s for g in state.gaps for s in range(g.from_seq, g.to_seq + 1)}
