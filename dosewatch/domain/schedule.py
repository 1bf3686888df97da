"""Schedule expansion: local wall-clock dose times → concrete UTC dose slots.

Rules (documented in the README, tested across daylight-saving days):

* Exactly one slot per dose per local calendar day from ``valid_from`` on.
* A local time that does not exist (spring forward, 02:30 on 2026-03-29 in Stockholm) is moved
  forward by the length of the gap (→ 03:30 local), as RFC 5545 prescribes.
* A local time that exists twice (fall back, 02:30 on 2026-10-25) means its first occurrence.
* The window is added in UTC, so a 45-minute window is always 45 real minutes.

Python's ``zoneinfo`` with ``fold=0`` implements exactly these two rules: for a gap it applies
the offset in force before the transition, which lands the instant after the gap by its length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class DoseTime:
    time: time
    window_min: int
    weekdays: frozenset[int] | None = None  # ISO weekdays 1 (Monday) … 7; None = every day
    label: str | None = None
    time_critical: bool = False  # e.g. Parkinson medication: the alarm is high priority

    def applies_on(self, day: date) -> bool:
        return self.weekdays is None or day.isoweekday() in self.weekdays


@dataclass(frozen=True)
class Schedule:
    timezone: str
    doses: tuple[DoseTime, ...]
    valid_from: date
    valid_until: date | None = None  # inclusive, a local date


@dataclass(frozen=True)
class PlannedSlot:
    due_at: datetime  # UTC
    window_end: datetime  # UTC
    local_date: date
    local_time: time
    label: str | None = None
    time_critical: bool = False
    dst_change_day: bool = False  # the local day has 23 or 25 hours


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``tz`` (gap: forward; overlap: first)."""
    return datetime.combine(day, at, tzinfo=tz).replace(fold=0).astimezone(UTC)


def expand(schedule: Schedule, start: datetime, end: datetime) -> list[PlannedSlot]:
    """Every slot whose due time lies in ``[start, end)``, sorted by due time."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("expand() needs timezone-aware bounds")
    tz = ZoneInfo(schedule.timezone)
    # One local day either side covers any offset between UTC and the zone.
    first = max(start.astimezone(tz).date() - timedelta(days=1), schedule.valid_from)
    last = end.astimezone(tz).date() + timedelta(days=1)
    if schedule.valid_until is not None:
        last = min(last, schedule.valid_until)
    slots = [
        slot
        for day in _days(first, last)
        for slot in _slots_of_day(day, schedule.doses, tz)
        if start <= slot.due_at < end
    ]
    slots.sort(key=lambda s: s.due_at)
    return slots


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _slots_of_day(day: date, doses: Sequence[DoseTime], tz: ZoneInfo) -> Iterator[PlannedSlot]:
    dst_day = is_dst_change_day(day, tz)
    for dose in doses:
        if not dose.applies_on(day):
            continue
        due = local_instant(day, dose.time, tz)
        yield PlannedSlot(
            due_at=due,
            window_end=due + timedelta(minutes=dose.window_min),
            local_date=day,
            local_time=dose.time,
            label=dose.label,
            time_critical=dose.time_critical,
            dst_change_day=dst_day,
        )


def is_dst_change_day(day: date, tz: ZoneInfo) -> bool:
    """True when the zone's UTC offset differs between this local midnight and the next."""
    start = local_instant(day, time(0), tz)
    end = local_instant(day + timedelta(days=1), time(0), tz)
    return end - start != timedelta(days=1)
