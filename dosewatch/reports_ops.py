"""The alarm-handling and economics reports (see :mod:`dosewatch.reports` for adherence)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from dosewatch.db import DbConn, rollups
from dosewatch.db import reports as sql
from dosewatch.db import reports_alarms as alarm_sql
from dosewatch.domain import alarm_figures as af
from dosewatch.domain.economics import EconomicsSettings, economics
from dosewatch.domain.report_period import Period
from dosewatch.reports import Json


def _bounds(period: Period, timezone: str) -> tuple[datetime, datetime]:
    """The period's instants in the municipality's time zone (alarms have no patient day)."""
    tz = ZoneInfo(timezone)
    return (
        datetime.combine(period.start, time(), tz),
        datetime.combine(period.end + timedelta(days=1), time(), tz),
    )


def _group(g: af.Group) -> Json:
    return {
        "key": g.key,
        "label": g.label,
        "alarms": g.alarms,
        "time_to_acknowledge": asdict(g.time_to_acknowledge),
        "time_to_resolve": asdict(g.time_to_resolve),
    }


def alarms_report(
    conn: DbConn, period: Period, team_id: int | None, now: datetime, timezone: str
) -> Json:
    rollups.refresh(conn, now)
    since, until = _bounds(period, timezone)
    facts = alarm_sql.alarm_facts(conn, since, until, team_id)
    patient_days = sql.grouped(
        conn, period.start, period.end, sql.Scope(team_id=team_id)
    ).total.monitored_days
    names = sql.teams(conn)
    total = af.overall(facts)
    outcomes: dict[str, int] = {}
    for a in facts:
        if a.outcome:
            outcomes[a.outcome] = outcomes.get(a.outcome, 0) + 1
    by_team = af.group_by(
        facts,
        lambda a: "" if a.team_id is None else str(a.team_id),
        lambda k: names.get(int(k), k) if k else "—",
    )
    by_shift = af.group_by(
        facts,
        lambda a: af.shift_of(a.opened_at, timezone),
        lambda k: af.SHIFT_LABELS[k],
        af.SHIFT_ORDER,
    )
    return {
        "period": period.as_dict(),
        "team_id": team_id,
        "alarms": total.alarms,
        "patient_days": patient_days,
        "alarms_per_100_patient_days": af.per_100_patient_days(total.alarms, patient_days),
        "time_to_acknowledge": asdict(total.time_to_acknowledge),
        "time_to_resolve": asdict(total.time_to_resolve),
        "not_acknowledged_within_15_min": sum(af.unacknowledged_too_long(a, now) for a in facts),
        "reached_last_step": sum(a.reached_last_step for a in facts),
        "by_team": [_group(g) for g in by_team],
        "by_shift": [_group(g) for g in by_shift],
        "by_kind": [_group(g) for g in af.group_by(facts, lambda a: a.kind)],
        "outcomes": [{"outcome": k, "count": n} for k, n in sorted(outcomes.items())],
        "delivery_failures": [
            {"channel": c, "status": s, "count": n}
            for c, s, n in alarm_sql.delivery_failures(conn, since, until, team_id)
        ],
    }


def economics_report(
    conn: DbConn, period: Period, team_id: int | None, now: datetime, s: EconomicsSettings
) -> Json:
    rollups.refresh(conn, now)
    sums = sql.window_sums(conn, period.start, period.end, sql.Scope(team_id=team_id))
    doses = sum(c.taken_any for c, _ in sums.values())
    dispenser_days = sum(n for _, n in sums.values())
    e = economics(doses, dispenser_days, period.days, s)
    return {
        "period": period.as_dict(),
        "team_id": team_id,
        "settings": {**asdict(s), "cost_per_visit_sek": s.visit_cost_sek},
        **asdict(e),
    }
