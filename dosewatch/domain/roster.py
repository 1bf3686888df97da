"""Rosters: who is on duty when, and the stretches of time when nobody reachable is.

A shift is two UTC instants, ``[starts_at, ends_at)``, never a date and two wall times. A night
shift that crosses midnight, or one that spans a daylight-saving change, is then just a longer or
shorter interval, and "who is on duty at 02:30" is one comparison. :func:`shift_from_local` is the
one place wall times become instants, and it uses the same rule as the dose schedule
(:func:`dosewatch.domain.schedule.local_instant`: a time that does not exist moves forward by the
gap, a time that exists twice means its first occurrence). So the 22:00–07:00 night shift in
Stockholm lasts 9 h, except 8 h on the spring-forward night and 10 h on the fall-back night.

A *gap* is time inside a period when no reachable primary or backup nurse is on duty. Reachable
means the nurse is active and has a phone: the escalation's first step
(:func:`dosewatch.domain.escalation.recipients_for`, target ``on_duty``) pages the primary, then
the backup, so a lead alone does not close a gap. Gaps are computed ahead of time, so a manager
sees the empty slot on Tuesday's roster before Tuesday's alarm reaches no one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dosewatch.domain.schedule import local_instant

Interval = tuple[datetime, datetime]


class Role(StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"
    LEAD = "lead"


# The roles the first escalation step pages; a lead alone leaves the first step with no one.
COVERING_ROLES = frozenset({Role.PRIMARY, Role.BACKUP})


@dataclass(frozen=True)
class Shift:
    nurse_id: int
    role: Role
    starts_at: datetime  # inclusive
    ends_at: datetime  # exclusive: a shift ending at 07:00 and one starting then do not overlap

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("a shift needs timezone-aware instants")
        if self.ends_at <= self.starts_at:
            raise ValueError("a shift must end after it starts")

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.starts_at < end and start < self.ends_at


def on_duty(shifts: Iterable[Shift], at: datetime) -> list[Shift]:
    """The shifts running at the instant ``at`` (half-open, like the SQL in db/escalation)."""
    return [s for s in shifts if s.covers(at)]


def covered(
    shifts: Iterable[Shift], start: datetime, end: datetime, reachable_nurse_ids: Collection[int]
) -> list[Interval]:
    """The disjoint, sorted intervals of ``[start, end)`` with a reachable primary or backup.

    Touching intervals are merged, so a 07:00 hand-over between two shifts is one interval.
    """
    _check_range(start, end)
    if start == end:  # an empty period: a shift running at that instant covers no time
        return []
    pieces = sorted(
        (max(s.starts_at, start), min(s.ends_at, end))
        for s in shifts
        if s.role in COVERING_ROLES and s.nurse_id in reachable_nurse_ids and s.overlaps(start, end)
    )
    merged: list[Interval] = []
    for lo, hi in pieces:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def gaps(
    shifts: Iterable[Shift], start: datetime, end: datetime, reachable_nurse_ids: Collection[int]
) -> list[Interval]:
    """The intervals of ``[start, end)`` where no reachable primary or backup nurse is on duty.

    Exactly the complement of :func:`covered`: together they partition the period.
    """
    out: list[Interval] = []
    cursor = start
    for lo, hi in covered(shifts, start, end, reachable_nurse_ids):
        if cursor < lo:
            out.append((cursor, lo))
        cursor = hi
    if cursor < end:
        out.append((cursor, end))
    return out


def unreachable_in(
    shifts: Iterable[Shift], gap: Interval, reachable_nurse_ids: Collection[int]
) -> list[int]:
    """Nurses rostered as primary or backup during ``gap`` who cannot be reached: the reason a
    gap exists although the roster looks full (a deactivated nurse still has shifts)."""
    return sorted(
        {
            s.nurse_id
            for s in shifts
            if s.role in COVERING_ROLES
            and s.nurse_id not in reachable_nurse_ids
            and s.overlaps(*gap)
        }
    )


def shift_from_local(
    nurse_id: int, role: Role, day: date, start: time, end: time, tz: ZoneInfo | str
) -> Shift:
    """The shift that starts at wall time ``start`` on local date ``day`` and ends at ``end``.

    An ``end`` at or before ``start`` is on the next local day (22:00–07:00 is a night shift;
    08:00–08:00 is 24 wall-clock hours). Both ends follow the schedule's rule for daylight
    saving. On the spring-forward day in Stockholm, 02:30–03:00 would begin at 03:30 (moved out of
    the gap) and end at 03:00, before it began; that is refused rather than silently emptied.
    """
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    end_day = day if end > start else day + timedelta(days=1)
    starts_at = local_instant(day, start, zone)
    ends_at = local_instant(end_day, end, zone)
    if ends_at <= starts_at:
        raise ValueError(
            f"{start:%H:%M}–{end:%H:%M} on {day} does not exist in {zone.key}"
            " (a daylight-saving change removes it)"
        )
    return Shift(nurse_id, role, starts_at, ends_at)


def _check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("a roster period needs timezone-aware bounds")
    if end < start:
        raise ValueError("a roster period must not end before it starts")


def total(intervals: Sequence[Interval]) -> timedelta:
    """The summed length of disjoint intervals."""
    return sum((hi - lo for lo, hi in intervals), timedelta())
