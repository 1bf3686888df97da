"""Alarm handling figures: how fast alarms are acknowledged and resolved, and what came of them.

Pure functions over one row per alarm (:class:`AlarmFacts`):

- **time to acknowledge** = first acknowledgement − opening; **time to resolve** = resolution −
  opening; each summarised as count, median and 90th percentile by the *nearest-rank* method
  (the value at rank ⌈q·n⌉ of the sorted durations: always an observed duration);
- **shift** of an alarm = the local time it opened: ``day`` 07–15, ``evening`` 15–22,
  ``night`` 22–07 (:data:`SHIFTS`);
- **not acknowledged within 15 min** (:data:`ACK_LIMIT`): no acknowledgement by then (still
  none, or a later one);
- **alarms per 100 patient-days** = alarms / monitored patient-days × 100.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

ACK_LIMIT = timedelta(minutes=15)
# (name, first local hour, label); a shift runs to the next one's first hour.
SHIFTS: tuple[tuple[str, int, str], ...] = (
    ("night", 0, "22–07"),
    ("day", 7, "07–15"),
    ("evening", 15, "15–22"),
    ("night", 22, "22–07"),
)
SHIFT_ORDER = ("day", "evening", "night")
SHIFT_LABELS = {name: label for name, _, label in SHIFTS}


@dataclass(frozen=True)
class AlarmFacts:
    alarm_id: int
    kind: str
    team_id: int | None
    opened_at: datetime
    first_ack_at: datetime | None
    resolved_at: datetime | None
    outcome: str | None
    reached_last_step: bool


@dataclass(frozen=True)
class Durations:
    count: int
    median_s: float | None
    p90_s: float | None


def nearest_rank(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-quantile by nearest rank (q in (0, 1]); None for no values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def durations(seconds: Iterable[float]) -> Durations:
    values = sorted(seconds)
    return Durations(len(values), nearest_rank(values, 0.5), nearest_rank(values, 0.9))


def shift_of(opened_at: datetime, timezone: str) -> str:
    hour = opened_at.astimezone(ZoneInfo(timezone)).hour
    name = SHIFTS[0][0]
    for shift, first_hour, _ in SHIFTS:
        if hour >= first_hour:
            name = shift
    return name


def time_to_ack(a: AlarmFacts) -> float | None:
    return None if a.first_ack_at is None else (a.first_ack_at - a.opened_at).total_seconds()


def time_to_resolve(a: AlarmFacts) -> float | None:
    return None if a.resolved_at is None else (a.resolved_at - a.opened_at).total_seconds()


def unacknowledged_too_long(a: AlarmFacts, now: datetime) -> bool:
    """No acknowledgement within :data:`ACK_LIMIT` (an alarm younger than that is not counted)."""
    if a.first_ack_at is not None:
        return a.first_ack_at - a.opened_at > ACK_LIMIT
    return now - a.opened_at > ACK_LIMIT


@dataclass(frozen=True)
class Group:
    key: str
    label: str
    alarms: int
    time_to_acknowledge: Durations
    time_to_resolve: Durations


def _summarise(key: str, label: str, alarms: Sequence[AlarmFacts]) -> Group:
    acks = (d for d in map(time_to_ack, alarms) if d is not None)
    resolves = (d for d in map(time_to_resolve, alarms) if d is not None)
    return Group(key, label, len(alarms), durations(acks), durations(resolves))


def group_by(
    alarms: Iterable[AlarmFacts],
    key: Callable[[AlarmFacts], str],
    label: Callable[[str], str] = str,
    order: Sequence[str] | None = None,
) -> list[Group]:
    groups: dict[str, list[AlarmFacts]] = {}
    for a in alarms:
        groups.setdefault(key(a), []).append(a)
    keys = [k for k in order if k in groups] if order else sorted(groups)
    return [_summarise(k, label(k), groups[k]) for k in keys]


def overall(alarms: Sequence[AlarmFacts]) -> Group:
    return _summarise("all", "all", alarms)


def per_100_patient_days(alarms: int, patient_days: int) -> float | None:
    return None if patient_days <= 0 else round(100.0 * alarms / patient_days, 2)
