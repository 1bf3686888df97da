"""Report queries that need the slots themselves: a patient's dose calendar, figures per dose
time of day, the take times behind the late-habit insight, and device trouble counts.

Slots come through :data:`dosewatch.db.rollups.SLOTS_SQL`, with the local day and counted state
the rollup uses; the UTC range around the period only lets the index narrow the scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db.reports import REAL_PATIENT, Scope
from dosewatch.db.rollups import COLUMNS, SLOTS_SQL
from dosewatch.domain.adherence import DayCounts

_IN_PERIOD = (
    " s.due_at >= (%(start)s::date - 2)::timestamp AT TIME ZONE 'UTC'"
    " AND s.due_at < (%(end)s::date + 3)::timestamp AT TIME ZONE 'UTC'"
    " AND s.local_date BETWEEN %(start)s AND %(end)s"
)
_SLOTS = f" FROM {SLOTS_SQL.format(where='')} JOIN dispensers d ON d.id = s.dispenser_id"


@dataclass(frozen=True)
class CalendarSlot:
    slot_id: int
    dispenser_id: str
    date: date
    local_time: time | None
    label: str | None
    due_at: datetime
    window_end: datetime
    state: str
    counted_as: str  # the state it counts as (domain.adherence.counted_state)
    taken_received_at: datetime | None
    taken_occurred_at: datetime | None


def calendar(conn: DbConn, patient_id: int, start: date, end: date) -> list[CalendarSlot]:
    rows = conn.execute(
        "SELECT s.id, s.dispenser_id, s.local_date AS day, s.counted,"
        " coalesce(s.local_time, (s.due_at AT TIME ZONE s.timezone)::time) AS local_time,"
        " s.label, s.due_at, s.window_end, s.state, e.received_at, e.occurred_at"
        f" {_SLOTS}"
        " LEFT JOIN LATERAL (SELECT received_at, occurred_at FROM dose_events ev"
        "   WHERE ev.dispenser_id = s.dispenser_id AND ev.event_id = s.taken_event_id"
        "   ORDER BY received_at LIMIT 1) e ON s.taken_event_id IS NOT NULL"
        f" WHERE d.patient_id = %(patient)s AND {_IN_PERIOD}"
        " ORDER BY s.due_at, s.dispenser_id",
        {"patient": patient_id, "start": start, "end": end},
    ).fetchall()
    return [
        CalendarSlot(
            r["id"],
            r["dispenser_id"],
            r["day"],
            r["local_time"],
            r["label"],
            r["due_at"],
            r["window_end"],
            r["state"],
            r["counted"],
            r["received_at"],
            r["occurred_at"],
        )
        for r in rows
    ]


def per_dose(
    conn: DbConn, patient_id: int, start: date, end: date
) -> list[tuple[time, str | None, DayCounts, int, int]]:
    """Per dose time of day: (local time, label, counts, monitored days, correct days). Each
    dose time on each day is one 'day' of that dose."""
    counts = ", ".join(f"count(*) FILTER (WHERE s.counted = '{c}')::int AS {c}" for c in COLUMNS)
    rows = conn.execute(
        "SELECT coalesce(s.local_time, (s.due_at AT TIME ZONE s.timezone)::time) AS lt,"
        f" max(s.label) AS label, {counts}"
        f" {_SLOTS} WHERE d.patient_id = %(patient)s AND {_IN_PERIOD}"
        " GROUP BY lt ORDER BY lt",
        {"patient": patient_id, "start": start, "end": end},
    ).fetchall()
    out = []
    for r in rows:
        c = DayCounts(**{k: int(r[k]) for k in COLUMNS})
        out.append((r["lt"], r["label"], c, c.expected, c.taken_any))
    return out


@dataclass(frozen=True)
class DoseTakes:
    patient_id: int
    dispenser_id: str
    local_time: time
    label: str | None
    takes: list[tuple[float, bool]]  # (minutes from due to received, late?)


def take_delays(conn: DbConn, start: date, end: date, scope: Scope) -> list[DoseTakes]:
    """Every take of the period per dispenser and dose time, with its delay (receive time)."""
    rows = conn.execute(
        "SELECT d.patient_id, s.dispenser_id,"
        " coalesce(s.local_time, (s.due_at AT TIME ZONE s.timezone)::time) AS lt,"
        " max(s.label) AS label,"
        " array_agg(extract(epoch FROM e.received_at - s.due_at) / 60.0 ORDER BY s.due_at)"
        "   AS delays,"
        " array_agg(s.state = 'taken_late' ORDER BY s.due_at) AS late"
        f" {_SLOTS} JOIN patients p ON p.id = d.patient_id"
        " JOIN LATERAL (SELECT received_at FROM dose_events ev"
        "   WHERE ev.dispenser_id = s.dispenser_id AND ev.event_id = s.taken_event_id"
        "   ORDER BY received_at LIMIT 1) e ON true"
        f" WHERE s.state IN ('taken', 'taken_late') AND {_IN_PERIOD}"
        f" AND (%(team)s::bigint IS NULL OR p.team_id = %(team)s) AND {REAL_PATIENT}"
        " GROUP BY d.patient_id, s.dispenser_id, lt ORDER BY d.patient_id, s.dispenser_id, lt",
        {"start": start, "end": end, **scope.params()},
    ).fetchall()
    return [
        DoseTakes(
            r["patient_id"],
            r["dispenser_id"],
            r["lt"],
            r["label"],
            [(float(m), bool(late)) for m, late in zip(r["delays"], r["late"], strict=True)],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class DeviceCounts:
    dispenser_id: str
    patient_id: int
    offline_periods: int
    unknown_slots: int
    replayed_events: int
    clock_offset_s: float | None
    clock_flagged: bool


def device_counts(
    conn: DbConn, since: datetime, until: datetime, start: date, end: date, scope: Scope
) -> list[DeviceCounts]:
    """Per dispenser in scope: offline transitions, unresolved unknown slots and replayed events
    (``dose_events_daily``: the continuous aggregate, or its plain view)."""
    rows: list[dict[str, Any]] = conn.execute(
        "SELECT d.id, d.patient_id,"
        " (SELECT count(*) FROM dispenser_online_history h WHERE h.dispenser_id = d.id"
        "   AND NOT h.online AND h.at >= %(since)s AND h.at < %(until)s)::int AS offline,"
        " (SELECT coalesce(sum(a.unknown), 0) FROM adherence_daily a WHERE a.dispenser_id = d.id"
        "   AND a.local_date BETWEEN %(start)s AND %(end)s)::int AS unknown,"
        " (SELECT coalesce(sum(x.replayed), 0) FROM dose_events_daily x"
        "   WHERE x.dispenser_id = d.id AND x.day >= %(since)s AND x.day < %(until)s)::int"
        "   AS replayed,"
        " pr.clock_offset_s, coalesce(pr.clock_flagged, false) AS clock_flagged"
        " FROM dispensers d JOIN patients p ON p.id = d.patient_id"
        " LEFT JOIN dispenser_presence pr ON pr.dispenser_id = d.id"
        f" WHERE (%(team)s::bigint IS NULL OR p.team_id = %(team)s) AND {REAL_PATIENT}"
        " ORDER BY d.id",
        {"since": since, "until": until, "start": start, "end": end, **scope.params()},
    ).fetchall()
    return [
        DeviceCounts(
            r["id"],
            r["patient_id"],
            r["offline"],
            r["unknown"],
            r["replayed"],
            r["clock_offset_s"],
            r["clock_flagged"],
        )
        for r in rows
    ]
