"""``GET /api/v1/reports/municipality.pdf`` and ``/api/v1/reports/teams/{id}.pdf``: the monthly
PDF report (:mod:`dashboards.reports_pdf`).

The same access rules as the JSON they are made of (:mod:`dashboards.reports_api`): the
municipality's report is for managers and admins, a team's for its nurses, managers and admins
(another team: 404, audited ``denied``). A PDF leaves the system, so each download is audited as
an ``export``; a team's report names its patients and the audit row lists them. The month is
``month=YYYY-MM``; without it, the last whole month.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dashboards import reports_pdf
from dashboards.access import Access, Care, Oversight
from dashboards.deps import Db, Now
from dashboards.fields import Id, Text, errors
from dashboards.report_deps import economics_settings, period_of, team_name, today
from dosewatch import reports, reports_ops
from dosewatch.domain.adherence import DEFAULT_THRESHOLD_PCT
from dosewatch.domain.report_period import Period

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

MONTH_Q = Query(
    max_length=7, description="YYYY-MM; default: the last whole month", examples=["2026-11"]
)
Threshold = Annotated[float, Query(ge=0, le=100, description="under-threshold limit, %")]
Language = Annotated[Literal["sv", "en"] | None, Query(description="default: the caller's")]
PDF_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "The monthly report (A4 PDF)"}
}


def _month(request: Request, clk: Any, month: str | None) -> str:
    if month is not None:
        return month
    last = today(request, clk).replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def _pdf(content: bytes, filename: str) -> Response:
    return Response(
        content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _document(
    request: Request,
    conn: Db,
    clk: Any,
    acc: Access,
    scope: Literal["municipality", "team"],
    period: Period,
    report: dict[str, Any],
    team_id: int | None,
    language: str | None,
) -> bytes:
    """The PDF of ``report``: the month's alarm handling, economics (managers and admins
    only, like the API's) and the insights as of its last day (or today, in a running month)."""
    tz = request.app.state.default_timezone
    now = clk.now()
    last_day = min(period.end, today(request, clk))
    return reports_pdf.render(
        reports_pdf.MonthlyReport(
            scope=scope,
            month=period.start,
            report=report,
            alarms=reports_ops.alarms_report(conn, period, team_id, now, tz),
            economics=(
                reports_ops.economics_report(
                    conn, period, team_id, now, economics_settings(request)
                )
                if acc.principal.role in ("manager", "admin")
                else None
            ),
            insights=reports.insights_report(conn, last_day, team_id, now, tz),
            generated_at=now,
            generated_by=acc.principal.name,
            timezone=tz,
            language=language or acc.principal.language,
        )
    )


@router.get("/municipality.pdf", response_class=Response, responses={**errors(401, 403), **PDF_DOC})
def municipality_pdf(
    request: Request,
    conn: Db,
    clk: Now,
    acc: Oversight,
    month: Annotated[Text | None, MONTH_Q] = None,
    threshold: Threshold = DEFAULT_THRESHOLD_PCT,
    lang: Language = None,
) -> Response:
    """The municipality's monthly report: figures by team and district, no patient named."""
    chosen = _month(request, clk, month)
    period = period_of(request, clk, chosen, None, None, None)
    report = reports.municipality(conn, period, threshold, clk.now())
    content = _document(request, conn, clk, acc, "municipality", period, report, None, lang)
    acc.log("export", "report", "municipality", format="pdf", month=chosen)
    return _pdf(content, f"dosewatch-municipality-{chosen}.pdf")


@router.get(
    "/teams/{team_id}.pdf", response_class=Response, responses={**errors(401, 403, 404), **PDF_DOC}
)
def team_pdf(
    team_id: Id,
    request: Request,
    conn: Db,
    clk: Now,
    acc: Care,
    month: Annotated[Text | None, MONTH_Q] = None,
    threshold: Threshold = DEFAULT_THRESHOLD_PCT,
    lang: Language = None,
) -> Response:
    """A team's monthly report, with each of its patients' figures."""
    name = team_name(conn, acc, team_id)
    chosen = _month(request, clk, month)
    period = period_of(request, clk, chosen, None, None, None)
    report = reports.team(conn, team_id, name, period, threshold, clk.now())
    content = _document(request, conn, clk, acc, "team", period, report, team_id, lang)
    acc.log(
        "export",
        "team",
        team_id,
        format="pdf",
        month=chosen,
        patients=[p["patient_id"] for p in report["patients"]],
    )
    return _pdf(content, f"dosewatch-team-{team_id}-{chosen}.pdf")
