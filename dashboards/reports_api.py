"""The managers' reports: ``/api/v1/reports/…`` JSON and CSV (contract: docs/reports-api.md).

Thin routes: parse the period, check who may see what, call :mod:`dosewatch.reports`, shape.
Municipality-wide figures and economics are for managers and admins; a nurse sees her own
team's (another team answers 404 and is audited ``denied``, like any record); pharmacists have
no reports. Every answer about one patient is audited as an ``open`` of that patient.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from dashboards import report_csv
from dashboards import report_schemas as rs
from dashboards.access import Access, Care, Oversight
from dashboards.deps import Db, Now, not_found
from dashboards.fields import Id, errors, text
from dosewatch import reports, reports_ops
from dosewatch.config import ConfigError, load_settings
from dosewatch.db import reports as report_sql
from dosewatch.domain.adherence import DEFAULT_THRESHOLD_PCT
from dosewatch.domain.economics import EconomicsSettings
from dosewatch.domain.report_period import Period, parse_period

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

Month = Annotated[text(7) | None, Query(description="YYYY-MM", examples=["2026-11"])]
Week = Annotated[text(8) | None, Query(description="ISO week YYYY-Www", examples=["2026-W48"])]
From = Annotated[date | None, Query(alias="from", description="first day (YYYY-MM-DD)")]
To = Annotated[date | None, Query(description="last day, included")]
Threshold = Annotated[float, Query(ge=0, le=100, description="under-threshold limit, %")]
TeamQ = Annotated[Id | None, Query(description="one team (a nurse: her own, the default)")]
Dec = Annotated[report_csv.Decimal, Query(description="decimal comma (Excel sv) or point")]
District = text(100)
E = errors(401, 403, 404)


def _today(request: Request, clk: Any) -> date:
    return clk.now().astimezone(ZoneInfo(request.app.state.default_timezone)).date()  # type: ignore[no-any-return]


def _period(request: Request, clk: Any, month: str | None, week: str | None,
            start: date | None, end: date | None, max_days: int = 400) -> Period:  # fmt: skip
    try:
        return parse_period(_today(request, clk), month=month, week=week, start=start, end=end,
                            max_days=max_days)  # fmt: skip
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _team_name(conn: Db, acc: Access, team_id: int) -> str:
    acc.check("team", team_id)
    name = report_sql.teams(conn).get(team_id)
    if name is None:
        raise not_found(f"team {team_id}")
    return name


def _team_scope(acc: Access, team_id: int | None) -> int | None:
    """A nurse's reports are her team's; a manager's may be any one team, or all."""
    if team_id is not None:
        acc.check("team", team_id)
        return team_id
    return acc.team_scope


def _patient(conn: Db, acc: Access, patient_id: int, what: str) -> report_sql.PatientInfo:
    acc.check("patient", patient_id)
    info = report_sql.patients(conn, report_sql.Scope(patient_id=patient_id)).get(patient_id)
    if info is None:
        raise not_found(f"patient {patient_id}")
    acc.log("open", "patient", patient_id, report=what)
    return info


def _economics(request: Request) -> EconomicsSettings:
    found = getattr(request.app.state, "economics", None)
    if isinstance(found, EconomicsSettings):
        return found
    try:
        s = load_settings()
    except ConfigError:  # checked at start-up already; a test app may have none
        log.warning("economics settings unreadable; using the defaults")
        return EconomicsSettings()
    return EconomicsSettings(s.economics_visit_anyway_share, s.economics_minutes_per_visit,
                             s.economics_cost_per_hour_sek, s.economics_cost_per_visit_sek,
                             s.economics_dispenser_rent_sek_per_month)  # fmt: skip


def _csv(report: dict[str, Any], table: str, name: str, decimal: str) -> Response:
    return report_csv.response(report[table], f"{name}-{table}.csv", decimal)  # type: ignore[arg-type]


# --- municipality --------------------------------------------------------------------------

MunicipalityTable = Literal["teams", "districts", "weekly", "under_threshold"]


@router.get("/municipality.csv", responses={**E, **report_csv.CSV_DOC}, response_class=Response)
def municipality_csv(request: Request, conn: Db, clk: Now, acc: Oversight,
                     table: MunicipalityTable = "teams", month: Month = None, week: Week = None,
                     start: From = None, end: To = None,
                     threshold: Threshold = DEFAULT_THRESHOLD_PCT,
                     decimal: Dec = "comma") -> Response:  # fmt: skip
    period = _period(request, clk, month, week, start, end)
    report = reports.municipality(conn, period, threshold, clk.now())
    return _csv(report, table, f"municipality-{period.start}-{period.end}", decimal)


@router.get("/municipality", response_model=rs.Municipality, responses=E)
def municipality(request: Request, conn: Db, clk: Now, acc: Oversight, month: Month = None,
                 week: Week = None, start: From = None, end: To = None,
                 threshold: Threshold = DEFAULT_THRESHOLD_PCT) -> dict[str, Any]:  # fmt: skip
    """Adherence of every team, district and week; patients under the threshold."""
    period = _period(request, clk, month, week, start, end)
    return reports.municipality(conn, period, threshold, clk.now())


# --- teams and districts -------------------------------------------------------------------

TeamTable = Literal["patients", "districts", "weekly", "under_threshold"]


@router.get("/teams/{team_id}.csv", responses={**E, **report_csv.CSV_DOC}, response_class=Response)
def team_csv(team_id: Id, request: Request, conn: Db, clk: Now, acc: Care,
             table: TeamTable = "patients", month: Month = None, week: Week = None,
             start: From = None, end: To = None, threshold: Threshold = DEFAULT_THRESHOLD_PCT,
             decimal: Dec = "comma") -> Response:  # fmt: skip
    name = _team_name(conn, acc, team_id)
    period = _period(request, clk, month, week, start, end)
    report = reports.team(conn, team_id, name, period, threshold, clk.now())
    return _csv(report, table, f"team-{team_id}-{period.start}-{period.end}", decimal)


@router.get("/teams/{team_id}", response_model=rs.TeamReport, responses=E)
def team(team_id: Id, request: Request, conn: Db, clk: Now, acc: Care, month: Month = None,
         week: Week = None, start: From = None, end: To = None,
         threshold: Threshold = DEFAULT_THRESHOLD_PCT) -> dict[str, Any]:  # fmt: skip
    """A team: its figures, districts, weekly trend and every patient."""
    name = _team_name(conn, acc, team_id)
    period = _period(request, clk, month, week, start, end)
    return reports.team(conn, team_id, name, period, threshold, clk.now())


@router.get("/teams/{team_id}/districts/{district}", response_model=rs.TeamReport, responses=E)
def district(team_id: Id, district: District, request: Request, conn: Db, clk: Now,
             acc: Care, month: Month = None, week: Week = None, start: From = None,
             end: To = None, threshold: Threshold = DEFAULT_THRESHOLD_PCT
             ) -> dict[str, Any]:  # fmt: skip
    """One district of a team (a patient's ``district``), shaped like the team report."""
    name = _team_name(conn, acc, team_id)
    scope = report_sql.Scope(team_id=team_id, district=district, by_district=True)
    if not report_sql.patients(conn, scope):
        raise not_found(f"district {district!r} in team {team_id}")
    period = _period(request, clk, month, week, start, end)
    return reports.team(conn, team_id, name, period, threshold, clk.now(), district=district,
                        by_district=True)  # fmt: skip


# --- one patient (audited) -----------------------------------------------------------------

PatientTable = Literal["daily", "weekly", "doses", "calendar"]


@router.get("/patients/{patient_id}.csv", responses={**E, **report_csv.CSV_DOC},
            response_class=Response)  # fmt: skip
def patient_csv(patient_id: Id, request: Request, conn: Db, clk: Now, acc: Care,
                table: PatientTable = "daily", month: Month = None, week: Week = None,
                start: From = None, end: To = None, decimal: Dec = "comma") -> Response:  # fmt: skip
    info = _patient(conn, acc, patient_id, f"csv:{table}")
    if table == "calendar":
        period = _period(request, clk, month, week, start, end, max_days=62)
        report = reports.calendar(conn, patient_id, period)
        table_rows = "slots"
    else:
        period = _period(request, clk, month, week, start, end)
        report = reports.patient(conn, info, period, clk.now())
        table_rows = table
    return report_csv.response(report[table_rows],
                               f"patient-{patient_id}-{table}-{period.start}-{period.end}.csv",
                               decimal)  # fmt: skip


@router.get("/patients/{patient_id}", response_model=rs.PatientReport, responses=E)
def patient(patient_id: Id, request: Request, conn: Db, clk: Now, acc: Care,
            month: Month = None, week: Week = None, start: From = None,
            end: To = None) -> dict[str, Any]:  # fmt: skip
    """A patient's figures by week, day and dose time. Audited as an opening of the patient."""
    info = _patient(conn, acc, patient_id, "patient")
    period = _period(request, clk, month, week, start, end)
    return reports.patient(conn, info, period, clk.now())


@router.get("/patients/{patient_id}/calendar", response_model=rs.Calendar, responses=E)
def calendar(patient_id: Id, request: Request, conn: Db, clk: Now, acc: Care,
             month: Month = None, week: Week = None, start: From = None,
             end: To = None) -> dict[str, Any]:  # fmt: skip
    """Every dose slot of the period (at most 62 days). Audited as an opening of the patient."""
    _patient(conn, acc, patient_id, "calendar")
    period = _period(request, clk, month, week, start, end, max_days=62)
    return reports.calendar(conn, patient_id, period)


# --- alarms, economics, insights -------------------------------------------------------------

AlarmTable = Literal["by_team", "by_shift", "by_kind", "outcomes", "delivery_failures"]


def _alarms(request: Request, conn: Db, clk: Any, acc: Access, team_id: int | None,
            month: str | None, week: str | None, start: date | None,
            end: date | None) -> dict[str, Any]:  # fmt: skip
    scope = _team_scope(acc, team_id)
    period = _period(request, clk, month, week, start, end)
    return reports_ops.alarms_report(conn, period, scope, clk.now(),
                                     request.app.state.default_timezone)  # fmt: skip


@router.get("/alarms.csv", responses={**E, **report_csv.CSV_DOC}, response_class=Response)
def alarms_csv(request: Request, conn: Db, clk: Now, acc: Care, table: AlarmTable = "by_team",
               team_id: TeamQ = None, month: Month = None, week: Week = None,
               start: From = None, end: To = None, decimal: Dec = "comma") -> Response:  # fmt: skip
    report = _alarms(request, conn, clk, acc, team_id, month, week, start, end)
    return _csv(report, table, "alarms", decimal)


@router.get("/alarms", response_model=rs.AlarmReport, responses=E)
def alarms(request: Request, conn: Db, clk: Now, acc: Care, team_id: TeamQ = None,
           month: Month = None, week: Week = None, start: From = None,
           end: To = None) -> dict[str, Any]:  # fmt: skip
    """Time to acknowledge and resolve by team, shift and kind; outcomes; failed deliveries."""
    return _alarms(request, conn, clk, acc, team_id, month, week, start, end)


@router.get("/economics", response_model=rs.EconomicsReport, responses=E)
def economics(request: Request, conn: Db, clk: Now, acc: Oversight, team_id: TeamQ = None,
              month: Month = None, week: Week = None, start: From = None,
              end: To = None) -> dict[str, Any]:  # fmt: skip
    """Home visits avoided, staff hours freed and net SEK, from the settings shown."""
    scope = _team_scope(acc, team_id)
    period = _period(request, clk, month, week, start, end)
    return reports_ops.economics_report(conn, period, scope, clk.now(), _economics(request))


InsightTable = Literal["falling", "habitually_late", "devices"]
AsOf = Annotated[date | None, Query(description="the last day looked at (default: today)")]


def _insights(request: Request, conn: Db, clk: Any, acc: Access, team_id: int | None,
              as_of: date | None) -> dict[str, Any]:  # fmt: skip
    scope = _team_scope(acc, team_id)
    today = _today(request, clk)
    day = as_of or today
    if day > today + timedelta(days=1):
        raise HTTPException(422, "as_of must not be in the future")
    return reports.insights_report(conn, day, scope, clk.now(),
                                   request.app.state.default_timezone)  # fmt: skip


@router.get("/insights.csv", responses={**E, **report_csv.CSV_DOC}, response_class=Response)
def insights_csv(request: Request, conn: Db, clk: Now, acc: Care,
                 table: InsightTable = "falling", team_id: TeamQ = None, as_of: AsOf = None,
                 decimal: Dec = "comma") -> Response:  # fmt: skip
    report = _insights(request, conn, clk, acc, team_id, as_of)
    return _csv(report, table, f"insights-{report['as_of']}", decimal)


@router.get("/insights", response_model=rs.Insights, responses=E)
def insights(request: Request, conn: Db, clk: Now, acc: Care, team_id: TeamQ = None,
             as_of: AsOf = None) -> dict[str, Any]:  # fmt: skip
    """Falling adherence, habitually late doses and dispensers that need a look."""
    return _insights(request, conn, clk, acc, team_id, as_of)
