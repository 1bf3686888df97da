"""The self-watch rule (pure): is the alarm machinery keeping up?

Healthy means every watched job succeeded recently (within :data:`STALE_FACTOR` of its
interval, with a floor) and no dose slot has sat past its window, unprocessed, for more than
:data:`MAX_BACKLOG`. Either failure means a missed dose could go unnoticed, so the health
endpoint answers 503 and the metric goes to 0 — something outside dosewatch must page on that.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

MAX_BACKLOG = timedelta(seconds=30)
STALE_FACTOR = 3
MIN_STALE = timedelta(seconds=30)
WATCHED = ("sweep", "escalate", "dispatch")


def problems(
    last_runs: Mapping[str, datetime],
    oldest_overdue: datetime | None,
    now: datetime,
    interval: timedelta,
) -> list[str]:
    out: list[str] = []
    stale_after = max(MIN_STALE, interval * STALE_FACTOR)
    for job in WATCHED:
        last = last_runs.get(job)
        if last is None:
            out.append(f"job {job!r} has never run")
        elif now - last > stale_after:
            out.append(f"job {job!r} last ran {int((now - last).total_seconds())} s ago")
    if oldest_overdue is not None and now - oldest_overdue > MAX_BACKLOG:
        age = int((now - oldest_overdue).total_seconds())
        out.append(f"a dose slot has been overdue and unprocessed for {age} s")
    return out
