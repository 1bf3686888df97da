"""Insights no dispenser vendor shows: falling adherence, habitually late doses, device trouble.

Each is a pure rule over figures the reports already computed; the thresholds are named here,
once, and quoted in the README:

- **falling adherence**: taking adherence over the :data:`RECENT_DAYS` up to the day asked about,
  against the :data:`BEFORE_DAYS` before them, fell by at least :data:`FALL_PP` percentage
  points (both periods with doses expected);
- **habitually late**: of one dose time's takes over :data:`HABIT_DAYS`, at least
  :data:`HABIT_MIN_TAKES` and at least :data:`HABIT_LATE_SHARE` of them late. The evidence is the
  median take time; the suggested new dose time is that median rounded to the quarter hour;
- **device trouble**: over :data:`HABIT_DAYS`, a dispenser often offline, with unresolved
  ``unknown`` slots, with many replayed events (delivered :data:`REPLAY_DELAY` or more after they
  happened: the device had buffered them), or a flagged clock — so a device problem is not
  mistaken for a patient problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from statistics import median

from dosewatch.domain.adherence import DayCounts

RECENT_DAYS = 14
BEFORE_DAYS = 28
FALL_PP = 5.0
HABIT_DAYS = 28
HABIT_MIN_TAKES = 8
HABIT_LATE_SHARE = 0.5
REPLAY_DELAY = timedelta(minutes=15)
OFFLINE_PERIODS_MIN = 3
UNKNOWN_SLOTS_MIN = 2
REPLAYED_MIN = 3
_QUARTER_MIN = 15


@dataclass(frozen=True)
class Fall:
    recent_pct: float
    before_pct: float
    change_pp: float


def falling(recent: DayCounts, before: DayCounts) -> Fall | None:
    """A fall of taking adherence of at least :data:`FALL_PP` points, or None."""
    if recent.expected == 0 or before.expected == 0:
        return None
    recent_pct = 100.0 * recent.taken_any / recent.expected
    before_pct = 100.0 * before.taken_any / before.expected
    change = recent_pct - before_pct
    if change > -FALL_PP:
        return None
    return Fall(round(recent_pct, 2), round(before_pct, 2), round(change, 2))


@dataclass(frozen=True)
class LateHabit:
    takes: int
    late: int
    median_delay_min: float
    median_take_time: time
    suggested_time: time


def _plus_minutes(at: time, minutes: float) -> time:
    total = (at.hour * 60 + at.minute + round(minutes)) % (24 * 60)
    return time(total // 60, total % 60)


def late_habit(due_local: time, takes: list[tuple[float, bool]]) -> LateHabit | None:
    """``takes``: (minutes from the due time to the take, taken late?) for one dose time. A
    habit, or None. Minutes are measured on the server's receive time, like on time/late."""
    late = sum(1 for _, was_late in takes if was_late)
    if len(takes) < HABIT_MIN_TAKES or late < HABIT_LATE_SHARE * len(takes):
        return None
    delay = float(median(minutes for minutes, _ in takes))
    take_time = _plus_minutes(due_local, delay)
    quarter = _QUARTER_MIN * round((take_time.hour * 60 + take_time.minute) / _QUARTER_MIN)
    suggested = time((quarter // 60) % 24, quarter % 60)
    return LateHabit(len(takes), late, round(delay, 1), take_time, suggested)


def device_reasons(
    offline_periods: int, unknown_slots: int, replayed_events: int, clock_flagged: bool
) -> list[str]:
    """Why a dispenser needs a look (empty: it does not)."""
    reasons = []
    if offline_periods >= OFFLINE_PERIODS_MIN:
        reasons.append("offline")
    if unknown_slots >= UNKNOWN_SLOTS_MIN:
        reasons.append("unknown_doses")
    if replayed_events >= REPLAYED_MIN:
        reasons.append("replays")
    if clock_flagged:
        reasons.append("clock")
    return reasons
