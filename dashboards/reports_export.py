"""CSV exports of every report table: ``/api/v1/reports/….csv`` (see :mod:`dashboards.report_csv`
for the format). Same access, audit and period parameters as the JSON routes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from dashboards import report_csv
from dashboards.access import Care, Oversight
from dashboards.deps import Db, Now
from dashboards.fields import Id
from dashboards.report_deps import (
    CALENDAR_MAX_DAYS,
    AsOf,
    Dec,
    E,
    PeriodQuery,
    TeamQ,
    Threshold,
    alarm_report,
    csv_table,
    insight_report,
    patient_info,
    team_name,
    within,
)
from dosewatch import reports
from dosewatch.domain.adherence import DEFAULT_THRESHOLD_PCT

router = APIRouter()
MunicipalityTable = Literal["teams", "districts", "weekly", "under_threshold"]
TeamTable = Literal["patients", "districts", "weekly", "under_threshold"]
PatientTable = Literal["daily", "weekly", "doses", "calendar"]
AlarmTable = Literal["by_team", "by_shift", "by_kind", "outcomes", "delivery_failures"]
InsightTable = Literal["falling", "habitually_late", "devices"]


@router.get("/municipality.csv", responses={**E, **report_csv.CSV_DOC}, response_class=Response)
def municipality_csv(
    conn: Db,
    clk: Now,
    acc: Oversight,
    period: PeriodQuery,
    table: MunicipalityTable = "teams",
    threshold: Threshold = DEFAULT_THRESHOLD_PCT,
    decimal: Dec = "comma",
) -> Response:
    report = reports.municipality(conn, period, threshold, clk.now())
    return csv_table(report, table, f"municipality-{period.start}-{period.end}", decimal)


@router.get("/teams/{team_id}.csv", responses={**E, **report_csv.CSV_DOC}, response_class=Response)
def team_csv(
    team_id: Id,
    conn: Db,
    clk: Now,
    acc: Care,
    period: PeriodQuery,
    table: TeamTable = "patients",
    threshold: Threshold = DEFAULT_THRESHOLD_PCT,
    decimal: Dec = "comma",
) -> Response:
    name = team_name(conn, acc, team_id)
    report = reports.team(conn, team_id, name, period, threshold, clk.now())
    return csv_table(report, table, f"team-{team_id}-{period.start}-{period.end}", decimal)


@router.get(
    "/patients/{patient_id}.csv", responses={**E, **report_csv.CSV_DOC}, response_class=Response
)
def patient_csv(
    patient_id: Id,
    conn: Db,
    clk: Now,
    acc: Care,
    period: PeriodQuery,
    table: PatientTable = "daily",
    decimal: Dec = "comma",
) -> Response:
    info = patient_info(conn, acc, patient_id, f"csv:{table}")
    if table == "calendar":
        report = reports.calendar(conn, patient_id, within(period, CALENDAR_MAX_DAYS))
        table_rows = "slots"
    else:
        report = reports.patient(conn, info, period, clk.now())
        table_rows = table
    return report_csv.response(
        report[table_rows], f"patient-{patient_id}-{table}-{period.start}-{period.end}.csv", decimal
    )


@router.get("/alarms.csv", responses={**E, **report_csv.CSV_DOC}, response_class=Response)
def alarms_csv(
    request: Request,
    conn: Db,
    clk: Now,
    acc: Care,
    period: PeriodQuery,
    table: AlarmTable = "by_team",
    team_id: TeamQ = None,
    decimal: Dec = "comma",
) -> Response:
    report = alarm_report(request, conn, clk, acc, team_id, period)
    return csv_table(report, table, "alarms", decimal)


@router.get("/insights.csv", responses={**E, **report_csv.CSV_DOC}, response_class=Response)
def insights_csv(
    request: Request,
    conn: Db,
    clk: Now,
    acc: Care,
    table: InsightTable = "falling",
    team_id: TeamQ = None,
    as_of: AsOf = None,
    decimal: Dec = "comma",
) -> Response:
    report = insight_report(request, conn, clk, acc, team_id, as_of)
    return csv_table(report, table, f"insights-{report['as_of']}", decimal)
