"""What the report routes share: period and team parameters, access, settings, CSV.

A nurse's reports are her own team's; a manager or admin may ask for one team or all. Every
helper that reads one patient's figures audits it as an ``open`` of that patient.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias
from zoneinfo import ZoneInfo

import psycopg
from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.responses import Response

from dashboards import report_csv
from dashboards.access import Access
from dashboards.deps import Db, Now, not_found
from dashboards.fields import Day, Id, errors, invalid, text
from dosewatch import reports, reports_ops
from dosewatch.config import ConfigError, load_settings
from dosewatch.db import reports as report_sql
from dosewatch.db import rollups
from dosewatch.domain.economics import EconomicsSettings
from dosewatch.domain.report_period import MAX_DAYS, Period, parse_period

log = logging.getLogger(__name__)


def refresh_rollup(request: Request) -> None:
    """Before a report: recompute the dirty days in a short transaction of its own, so the
    sweep never waits on a report's locks. A failure leaves the figures one job run behind,
    never the report unanswered."""
    try:
        with request.app.state.pool.connection() as conn, conn.transaction():
            rollups.refresh(conn, request.app.state.clock.now())
    except psycopg.Error:
        log.exception("adherence rollup refresh before a report failed")


if TYPE_CHECKING:  # text() builds an Annotated type at run time; mypy sees a str
    MonthText: TypeAlias = str
    WeekText: TypeAlias = str
    DistrictText: TypeAlias = str
else:
    MonthText, WeekText, DistrictText = text(7), text(8), text(100)
Month = Annotated[MonthText | None, Query(description="YYYY-MM", examples=["2026-11"])]
Week = Annotated[WeekText | None, Query(description="ISO week YYYY-Www", examples=["2026-W48"])]
From = Annotated[Day | None, Query(alias="from", description="first day (YYYY-MM-DD)")]
To = Annotated[Day | None, Query(alias="to", description="last day, included")]
Threshold = Annotated[float, Query(ge=0, le=100, description="under-threshold limit, %")]
TeamQ = Annotated[Id | None, Query(description="one team (a nurse: her own, the default)")]
Dec = Annotated[report_csv.Decimal, Query(description="decimal comma (Excel sv) or point")]
District = DistrictText
E = errors(401, 403, 404)

AsOf = Annotated[Day | None, Query(description="the last day looked at (default: today)")]


def today(request: Request, clk: Any) -> date:
    return clk.now().astimezone(ZoneInfo(request.app.state.default_timezone)).date()  # type: ignore[no-any-return]


def period_of(
    request: Request,
    clk: Any,
    month: str | None,
    week: str | None,
    start: date | None,
    end: date | None,
    max_days: int = MAX_DAYS,
) -> Period:
    try:
        return parse_period(
            today(request, clk), month=month, week=week, start=start, end=end, max_days=max_days
        )
    except ValueError as exc:
        invalid(("query", "month"), str(exc))


CALENDAR_MAX_DAYS = 62  # a calendar lists every slot


def _period_query(max_days: int) -> Callable[..., Period]:
    def period_query(
        request: Request,
        clk: Now,
        month: Month = None,
        week: Week = None,
        start: From = None,
        end: To = None,
    ) -> Period:
        """The report period from ``month``, ``week`` or ``from``/``to`` (default: this
        month)."""
        return period_of(request, clk, month, week, start, end, max_days=max_days)

    return period_query


# One set of period parameters for every report route (documented once, parsed once).
PeriodQuery = Annotated[Period, Depends(_period_query(MAX_DAYS))]
CalendarPeriodQuery = Annotated[Period, Depends(_period_query(CALENDAR_MAX_DAYS))]


def within(period: Period, max_days: int) -> Period:
    """``period`` when it is at most ``max_days`` long; a 422 in the one error shape otherwise."""
    if period.days > max_days:
        invalid(("query", "from"), f"a period is at most {max_days} days")
    return period


def team_name(conn: Db, acc: Access, team_id: int) -> str:
    """A reportable team's name: 404 for a team that does not exist or is not the caller's, and
    for a training team (training is in no report; answering zeros would pass it off as a real
    team with nothing to report)."""
    acc.check("team", team_id)
    name = report_sql.teams(conn).get(team_id)  # the reports' teams: every one but training
    if name is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"team {team_id} is a training team: it is in no report"
        )
    return name


def team_scope(conn: Db, acc: Access, team_id: int | None) -> int | None:
    """A nurse's reports are her team's; a manager's may be any one reportable team, or all."""
    if team_id is not None:
        team_name(conn, acc, team_id)
        return team_id
    return acc.team_scope


def patient_info(conn: Db, acc: Access, patient_id: int, what: str) -> report_sql.PatientInfo:
    acc.check("patient", patient_id)
    info = report_sql.patients(conn, report_sql.Scope(patient_id=patient_id)).get(patient_id)
    if info is None:
        raise not_found(f"patient {patient_id}")
    acc.log("open", "patient", patient_id, report=what)
    return info


def economics_settings(request: Request) -> EconomicsSettings:
    found = getattr(request.app.state, "economics", None)
    if isinstance(found, EconomicsSettings):
        return found
    try:
        s = load_settings()
    except ConfigError:  # checked at start-up already; a test app may have none
        log.warning("economics settings unreadable; using the defaults")
        return EconomicsSettings()
    return EconomicsSettings(
        s.economics_visit_anyway_share,
        s.economics_minutes_per_visit,
        s.economics_cost_per_hour_sek,
        s.economics_cost_per_visit_sek,
        s.economics_dispenser_rent_sek_per_month,
    )


def csv_table(report: dict[str, Any], table: str, name: str, decimal: str) -> Response:
    return report_csv.response(report[table], f"{name}-{table}.csv", decimal)  # type: ignore[arg-type]


def alarm_report(
    request: Request,
    conn: Db,
    clk: Any,
    acc: Access,
    team_id: int | None,
    period: Period,
) -> dict[str, Any]:
    scope = team_scope(conn, acc, team_id)
    return reports_ops.alarms_report(
        conn, period, scope, clk.now(), request.app.state.default_timezone
    )


def insight_report(
    request: Request, conn: Db, clk: Any, acc: Access, team_id: int | None, as_of: date | None
) -> dict[str, Any]:
    scope = team_scope(conn, acc, team_id)
    now_day = today(request, clk)
    day = as_of or now_day
    if day > now_day + timedelta(days=1):
        invalid(("query", "as_of"), "must not be in the future")
    return reports.insights_report(conn, day, scope, clk.now(), request.app.state.default_timezone)
