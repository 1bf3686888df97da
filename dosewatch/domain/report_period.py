"""A report's period: local calendar days, given as a month, an ISO week or two dates.

Days are each patient's own local days (see :func:`dosewatch.domain.adherence.local_day`), so a
period is a pair of dates, both included, never a pair of instants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

MAX_DAYS = 400
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def as_dict(self) -> dict[str, str | int]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "days": self.days}


def month_period(year: int, month: int) -> Period:
    start = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return Period(start, nxt - timedelta(days=1))


def parse_period(
    today: date,
    *,
    month: str | None = None,
    week: str | None = None,
    start: date | None = None,
    end: date | None = None,
    max_days: int = MAX_DAYS,
) -> Period:
    """The period asked for; the current month up to ``today`` when nothing is given. Raises
    ValueError with a sentence for the caller."""
    styles = sum(x is not None for x in (month, week)) + (start is not None or end is not None)
    if styles > 1:
        raise ValueError("give one of month, week, or from and to")
    if month is not None:
        m = _MONTH.match(month)
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ValueError(f"month must be YYYY-MM, got {month!r}")
        return month_period(int(m.group(1)), int(m.group(2)))
    if week is not None:
        w = _WEEK.match(week)
        try:
            if not w:
                raise ValueError
            monday = date.fromisocalendar(int(w.group(1)), int(w.group(2)), 1)
        except ValueError:
            raise ValueError(f"week must be an ISO week like 2026-W48, got {week!r}") from None
        return Period(monday, monday + timedelta(days=6))
    if start is None and end is None:
        return Period(today.replace(day=1), today)
    if start is None or end is None:
        raise ValueError("give both from and to")
    if end < start:
        raise ValueError("to must not be before from")
    period = Period(start, end)
    if period.days > max_days:
        raise ValueError(f"a period is at most {max_days} days")
    return period


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def weeks(period: Period) -> list[date]:
    """The Mondays of every ISO week that overlaps the period, in order."""
    out, monday = [], week_start(period.start)
    while monday <= period.end:
        out.append(monday)
        monday += timedelta(days=7)
    return out
