"""The managers' reports: ``/api/v1/reports/…`` JSON and CSV (contract: docs/reports-api.md).

Thin routes: parse the period, check who may see what, call :mod:`dosewatch.reports`, shape.
Municipality-wide figures and economics are for managers and admins; a nurse sees her own
team's (another team answers 404 and is audited ``denied``, like any record); pharmacists have
no reports. Every answer about one patient is audited as an ``open`` of that patient.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from dashboards import report_schemas as rs
from dashboards.access import Care, Oversight
from dashboards.deps import Db, Now, not_found
from dashboards.fields import Id
from dashboards.report_deps import (
    AsOf,
    CalendarPeriodQuery,
    District,
    E,
    PeriodQuery,
    TeamQ,
    Threshold,
    alarm_report,
    economics_settings,
    insight_report,
    patient_info,
    refresh_rollup,
    team_name,
    team_scope,
)
from dashboards.reports_export import router as export_router
from dosewatch import reports, reports_ops
from dosewatch.db import reports as report_sql
from dosewatch.domain.adherence import DEFAULT_THRESHOLD_PCT

router = APIRouter(
    prefix="/api/v1/reports", tags=["reports"], dependencies=[Depends(refresh_rollup)]
)
router.include_router(export_router)  # first: "/teams/3.csv" is not team "3.csv"


@router.get("/municipality", response_model=rs.Municipality, responses=E)
def municipality(
    conn: Db,
    clk: Now,
    acc: Oversight,
    period: PeriodQuery,
    threshold: Threshold = DEFAULT_THRESHOLD_PCT,
) -> dict[str, Any]:
    """Adherence of every team, district and week; patients under the threshold."""
    return reports.municipality(conn, period, threshold, clk.now())


@router.get("/teams/{team_id}", response_model=rs.TeamReport, responses=E)
def team(
    team_id: Id,
    conn: Db,
    clk: Now,
    acc: Care,
    period: PeriodQuery,
    threshold: Threshold = DEFAULT_THRESHOLD_PCT,
) -> dict[str, Any]:
    """A team: its figures, districts, weekly trend and every patient."""
    name = team_name(conn, acc, team_id)
    return reports.team(conn, team_id, name, period, threshold, clk.now())


@router.get("/teams/{team_id}/districts/{district}", response_model=rs.TeamReport, responses=E)
def district(
    team_id: Id,
    district: District,
    conn: Db,
    clk: Now,
    acc: Care,
    period: PeriodQuery,
    threshold: Threshold = DEFAULT_THRESHOLD_PCT,
) -> dict[str, Any]:
    """One district of a team (a patient's ``district``), shaped like the team report."""
    name = team_name(conn, acc, team_id)
    scope = report_sql.Scope(team_id=team_id, district=district, by_district=True)
    if not report_sql.patients(conn, scope):
        raise not_found(f"district {district!r} in team {team_id}")
    return reports.team(
        conn, team_id, name, period, threshold, clk.now(), district=district, by_district=True
    )


@router.get("/patients/{patient_id}", response_model=rs.PatientReport, responses=E)
def patient(
    patient_id: Id,
    conn: Db,
    clk: Now,
    acc: Care,
    period: PeriodQuery,
) -> dict[str, Any]:
    """A patient's figures by week, day and dose time. Audited as an opening of the patient."""
    info = patient_info(conn, acc, patient_id, "patient")
    return reports.patient(conn, info, period, clk.now())


@router.get("/patients/{patient_id}/calendar", response_model=rs.Calendar, responses=E)
def calendar(
    patient_id: Id,
    conn: Db,
    clk: Now,
    acc: Care,
    period: CalendarPeriodQuery,
) -> dict[str, Any]:
    """Every dose slot of the period (at most 62 days). Audited as an opening of the patient."""
    patient_info(conn, acc, patient_id, "calendar")
    return reports.calendar(conn, patient_id, period)


@router.get("/alarms", response_model=rs.AlarmReport, responses=E)
def alarms(
    request: Request,
    conn: Db,
    clk: Now,
    acc: Care,
    period: PeriodQuery,
    team_id: TeamQ = None,
) -> dict[str, Any]:
    """Time to acknowledge and resolve by team, shift and kind; outcomes; failed deliveries."""
    return alarm_report(request, conn, clk, acc, team_id, period)


@router.get("/economics", response_model=rs.EconomicsReport, responses=E)
def economics(
    request: Request,
    conn: Db,
    clk: Now,
    acc: Oversight,
    period: PeriodQuery,
    team_id: TeamQ = None,
) -> dict[str, Any]:
    """Home visits avoided, staff hours freed and net SEK, from the settings shown."""
    scope = team_scope(conn, acc, team_id)
    return reports_ops.economics_report(conn, period, scope, clk.now(), economics_settings(request))


@router.get("/insights", response_model=rs.Insights, responses=E)
def insights(
    request: Request, conn: Db, clk: Now, acc: Care, team_id: TeamQ = None, as_of: AsOf = None
) -> dict[str, Any]:
    """Falling adherence, habitually late doses and dispensers that need a look."""
    return insight_report(request, conn, clk, acc, team_id, as_of)
