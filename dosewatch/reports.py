"""The managers' reports, assembled: SQL sums (:mod:`dosewatch.db.reports`) → domain figures →
the shapes of ``docs/reports-api.md``. The web routes, CSV exports and PDF all call these.

Each report first brings the rollup up to date (:func:`dosewatch.db.rollups.refresh`), so a
figure read right after a slot changed already counts it. The web routes refresh once more
before, in a transaction of its own (:func:`dashboards.report_deps.refresh_rollup`), so the
request's own transaction normally finds nothing to claim and holds no dirty-day rows a sweep
could wait for. Access checks and auditing are the caller's (the routes): they depend on who
asks.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dosewatch.db import DbConn, rollups
from dosewatch.db import reports as sql
from dosewatch.db import reports_slots as slot_sql
from dosewatch.domain import insights
from dosewatch.domain.adherence import EMPTY, DayCounts, Figures, under_threshold
from dosewatch.domain.report_period import Period, iso_week, weeks

Json = dict[str, Any]


def _hhmm(t: time | None) -> str | None:
    return None if t is None else t.strftime("%H:%M")


def _weekly(period: Period, by_week: dict[date, Figures]) -> list[Json]:
    return [
        {
            "week": iso_week(monday),
            "week_start": monday.isoformat(),
            "figures": by_week.get(monday, EMPTY).as_dict(),
        }
        for monday in weeks(period)
    ]


def _patient_row(info: sql.PatientInfo, figs: Figures) -> Json:
    return {
        "patient_id": info.patient_id,
        "name": info.name,
        "team_id": info.team_id,
        "district": info.district,
        "figures": figs.as_dict(),
    }


def _under(
    conn: DbConn, scope: sql.Scope, figs: dict[int, Figures], threshold: float
) -> list[Json]:
    under = [p for p, f in figs.items() if under_threshold(f, threshold)]
    people = sql.patients(conn, scope, ids=under) if under else {}
    rows = [(figs[p], people[p]) for p in under if p in people]
    rows.sort(key=lambda r: (r[0].counts.taken_any / r[0].expected, r[1].name))
    return [_patient_row(info, f) for f, info in rows]


def municipality(conn: DbConn, period: Period, threshold: float, now: datetime) -> Json:
    rollups.refresh(conn, now)
    g = sql.grouped(conn, period.start, period.end, sql.Scope())
    names = sql.teams(conn)
    teams = [
        {"team_id": t, "name": n, "figures": g.teams.get(t, EMPTY).as_dict()}
        for t, n in names.items()
    ]
    if None in g.teams:
        teams.append({"team_id": None, "name": None, "figures": g.teams[None].as_dict()})
    districts = [
        {
            "team_id": t,
            "team_name": names.get(t) if t is not None else None,
            "district": d,
            "figures": f.as_dict(),
        }
        for (t, d), f in sorted(
            g.districts.items(),
            key=lambda kv: (
                names.get(kv[0][0], "") if kv[0][0] is not None else "~",
                kv[0][1] or "~",
            ),
        )
    ]
    return {
        "period": period.as_dict(),
        "threshold_pct": threshold,
        "figures": g.total.as_dict(),
        "teams": teams,
        "districts": districts,
        "weekly": _weekly(period, g.weeks),
        "under_threshold": _under(conn, sql.Scope(), g.patients, threshold),
    }


def team(
    conn: DbConn,
    team_id: int,
    team_name: str,
    period: Period,
    threshold: float,
    now: datetime,
    district: str | None = None,
    by_district: bool = False,
) -> Json:
    rollups.refresh(conn, now)
    scope = sql.Scope(team_id=team_id, district=district, by_district=by_district)
    g = sql.grouped(conn, period.start, period.end, scope)
    people = sql.patients(conn, scope)
    out: Json = {
        "period": period.as_dict(),
        "threshold_pct": threshold,
        "team": {"team_id": team_id, "name": team_name},
        "figures": g.total.as_dict(),
        "districts": [
            {"district": d, "figures": f.as_dict()}
            for (_, d), f in sorted(g.districts.items(), key=lambda kv: kv[0][1] or "~")
        ],
        "weekly": _weekly(period, g.weeks),
        "patients": [_patient_row(info, g.patients.get(p, EMPTY)) for p, info in people.items()],
        "under_threshold": _under(conn, scope, g.patients, threshold),
    }
    if by_district:
        out["district"] = district
    return out


def patient(conn: DbConn, info: sql.PatientInfo, period: Period, now: datetime) -> Json:
    rollups.refresh(conn, now)
    g = sql.grouped(conn, period.start, period.end, sql.Scope(patient_id=info.patient_id))
    days = sql.daily(conn, info.patient_id, period.start, period.end)
    daily = []
    for i in range(period.days):
        day = period.start + timedelta(days=i)
        c = days.get(day, DayCounts())
        daily.append(
            {
                "date": day.isoformat(),
                "taken": c.taken,
                "taken_late": c.taken_late,
                "missed": c.missed,
                "unknown": c.unknown,
                "suspended": c.suspended,
                "pending": c.pending,
                "expected": c.expected,
                "correct": c.correct if c.monitored else None,
            }
        )
    doses = [
        {
            "local_time": _hhmm(lt),
            "label": label,
            "figures": Figures(
                c, correct, monitored, 1 if c.expected or c.pending or c.suspended else 0
            ).as_dict(),
        }
        for lt, label, c, monitored, correct in slot_sql.per_dose(
            conn, info.patient_id, period.start, period.end
        )
    ]
    return {
        "period": period.as_dict(),
        "patient": {
            "patient_id": info.patient_id,
            "name": info.name,
            "team_id": info.team_id,
            "team_name": info.team_name,
            "district": info.district,
            "timezone": info.timezone,
            "dispensers": info.dispensers,
        },
        "figures": g.total.as_dict(),
        "weekly": _weekly(period, g.weeks),
        "daily": daily,
        "doses": doses,
    }


def calendar(conn: DbConn, patient_id: int, period: Period) -> Json:
    slots = slot_sql.calendar(conn, patient_id, period.start, period.end)
    return {
        "period": period.as_dict(),
        "patient_id": patient_id,
        "slots": [
            {
                "slot_id": s.slot_id,
                "dispenser_id": s.dispenser_id,
                "date": s.date.isoformat(),
                "local_time": _hhmm(s.local_time),
                "label": s.label,
                "due_at": s.due_at,
                "window_end": s.window_end,
                "state": s.state,
                "counted_as": s.counted_as,
                "taken_received_at": s.taken_received_at,
                "taken_occurred_at": s.taken_occurred_at,
                "counts": s.counted_as not in ("suspended", "pending"),
            }
            for s in slots
        ],
    }


def insights_report(
    conn: DbConn, as_of: date, team_id: int | None, now: datetime, timezone: str
) -> Json:
    rollups.refresh(conn, now)
    scope = sql.Scope(team_id=team_id)
    people = sql.patients(conn, scope)
    recent_start = as_of - timedelta(days=insights.RECENT_DAYS - 1)
    before_start = recent_start - timedelta(days=insights.BEFORE_DAYS)
    recent = sql.window_sums(conn, recent_start, as_of, scope)
    before = sql.window_sums(conn, before_start, recent_start - timedelta(days=1), scope)
    falling = []
    for pid, (counts, _) in recent.items():
        fall = insights.falling(counts, before.get(pid, (DayCounts(), 0))[0])
        if fall and pid in people:
            falling.append(
                {
                    "patient_id": pid,
                    "name": people[pid].name,
                    "team_id": people[pid].team_id,
                    "recent_pct": fall.recent_pct,
                    "before_pct": fall.before_pct,
                    "change_pp": fall.change_pp,
                    "recent_expected": counts.expected,
                    "before_expected": before[pid][0].expected,
                }
            )
    falling.sort(key=lambda r: (r["change_pp"], r["name"]))
    habit_start = as_of - timedelta(days=insights.HABIT_DAYS - 1)
    late = []
    for dose in slot_sql.take_delays(conn, habit_start, as_of, scope):
        habit = insights.late_habit(dose.local_time, dose.takes)
        if habit and dose.patient_id in people:
            due = _hhmm(dose.local_time)
            take = _hhmm(habit.median_take_time)
            late.append(
                {
                    "patient_id": dose.patient_id,
                    "name": people[dose.patient_id].name,
                    "dispenser_id": dose.dispenser_id,
                    "local_time": due,
                    "label": dose.label,
                    "takes": habit.takes,
                    "late": habit.late,
                    "median_take_time": take,
                    "median_delay_min": habit.median_delay_min,
                    "suggested_time": _hhmm(habit.suggested_time),
                    "evidence": f"{habit.late} of {habit.takes} doses due {due} taken after the"
                    f" window; median {take}",
                }
            )
    tz = ZoneInfo(timezone)
    since = datetime.combine(habit_start, time(), tz)
    until = datetime.combine(as_of + timedelta(days=1), time(), tz)
    devices = []
    for d in slot_sql.device_counts(conn, since, until, habit_start, as_of, scope):
        reasons = insights.device_reasons(
            d.offline_periods, d.unknown_slots, d.replayed_events, d.clock_flagged
        )
        if reasons:
            devices.append(
                {
                    "dispenser_id": d.dispenser_id,
                    "patient_id": d.patient_id,
                    "name": people[d.patient_id].name if d.patient_id in people else "",
                    "offline_periods": d.offline_periods,
                    "unknown_slots": d.unknown_slots,
                    "replayed_events": d.replayed_events,
                    "clock_offset_s": d.clock_offset_s,
                    "clock_flagged": d.clock_flagged,
                    "reasons": reasons,
                }
            )
    return {
        "as_of": as_of.isoformat(),
        "team_id": team_id,
        "falling": falling,
        "habitually_late": late,
        "devices": devices,
    }
