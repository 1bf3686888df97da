"""The self-watch rules (pure): is the alarm machinery keeping up, and is every gateway receiving?

Healthy means every watched job succeeded recently (within :data:`STALE_FACTOR` of its
interval, with a floor) and no dose slot has sat past its window, unprocessed, for more than
:data:`MAX_BACKLOG`. Either failure means a missed dose could go unnoticed, so the health
endpoint answers 503 and the metric goes to 0 — something outside dosewatch must page on that.

A gateway that has yielded its broker session (another client took it with the same client id
and was there first) receives nothing, so it fails the self-watch too. A session taken over
recently but held again is a *conflict*, reported but not failing: this installation still
receives everything; the other one is misconfigured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

MAX_BACKLOG = timedelta(seconds=30)
STALE_FACTOR = 3
MIN_STALE = timedelta(seconds=30)
WATCHED = ("sweep", "escalate", "dispatch")
# A gateway refreshes its status row every 30 s; one silent for longer than this has stopped
# (or lost its database), and its last state says nothing about now.
GATEWAY_SILENT_AFTER = timedelta(minutes=2)
# How long a takeover keeps the conflict flag up after the session was held again.
CONFLICT_SHOWN_FOR = timedelta(minutes=15)


class SessionFacts(Protocol):
    @property
    def client_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def seen_at(self) -> datetime: ...
    @property
    def last_takeover_at(self) -> datetime | None: ...


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


def running(session: SessionFacts, now: datetime) -> bool:
    return session.state != "stopped" and now - session.seen_at <= GATEWAY_SILENT_AFTER


def yielded(session: SessionFacts, now: datetime) -> bool:
    """The gateway is running but has given its session up: it receives nothing."""
    return running(session, now) and session.state == "yielded"


def in_conflict(session: SessionFacts, now: datetime) -> bool:
    """Yielded now, or its session was taken over recently (by a client using its id)."""
    recent = session.last_takeover_at is not None and (
        now - session.last_takeover_at <= CONFLICT_SHOWN_FOR
    )
    return yielded(session, now) or (running(session, now) and recent)


def session_problems(sessions: Iterable[SessionFacts], now: datetime) -> list[str]:
    return [
        f"gateway {s.client_id!r} receives nothing: another client uses the same "
        "DOSEWATCH_MQTT_CLIENT_ID on the broker and holds the session"
        for s in sessions
        if yielded(s, now)
    ]
