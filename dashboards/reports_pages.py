"""The managers' report pages: municipality → team → patient → the patient's dose calendar.

Like every other page these are server-rendered shells in the user's language; the figures come
from ``/api/v1/reports`` in the browser, so the API's rules apply unchanged: a nurse reads only
their own team (another team is a 404, audited ``denied``), every opening of a patient's figures
is audited by the API as an ``open`` of that patient, and a pharmacist gets the API's 403.

The page routes only choose where a reader starts: the municipality overview is for managers and
admins, so a nurse asking for it lands on their own team. The period (``month``, ``week`` or
``from``/``to``) travels in the query string from page to page and straight on to the API.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dashboards.access import CurrentPrincipal
from dashboards.auth import Principal
from dashboards.fields import Id
from dashboards.pages import _PageRoute, render
from dashboards.reports_pdf_api import router as pdf_router

router = APIRouter(route_class=_PageRoute)
# The PDF routes ride on this router, which the app includes before the JSON reports router:
# "/teams/3.pdf" must reach the PDF route, not "/teams/{team_id}" (which would answer 422).
router.include_router(pdf_router)


def _query(request: Request) -> str:
    return f"?{request.url.query}" if request.url.query else ""


def _page(request: Request, template: str, principal: Principal, **context: object) -> HTMLResponse:
    """A report page; ``today`` is the app clock's local date, so the pages and the API (which
    defaults to the current month up to today) agree on what today is."""
    now = request.app.state.clock.now().astimezone(ZoneInfo(request.app.state.default_timezone))
    return render(request, template, principal, today=now.date().isoformat(), **context)


@router.get("/reports", response_model=None, include_in_schema=False)
def overview_page(request: Request, principal: CurrentPrincipal) -> HTMLResponse | RedirectResponse:
    role, team_id = principal.role, principal.team_id
    if role == "nurse" and team_id is not None:
        return RedirectResponse(f"/reports/teams/{team_id}{_query(request)}", status_code=303)
    return _page(request, "reports.html", principal, report="municipality")


@router.get("/reports/teams/{team_id}", include_in_schema=False)
def team_page(team_id: Id, request: Request, principal: CurrentPrincipal) -> HTMLResponse:
    district = request.query_params.get("district")
    return _page(
        request, "reports_team.html", principal, report="team", team_id=team_id, district=district
    )


@router.get("/reports/patients/{patient_id}", include_in_schema=False)
def patient_page(patient_id: Id, request: Request, principal: CurrentPrincipal) -> HTMLResponse:
    return _page(
        request, "reports_patient.html", principal, report="patient", patient_id=patient_id
    )


@router.get("/reports/patients/{patient_id}/calendar", include_in_schema=False)
def calendar_page(patient_id: Id, request: Request, principal: CurrentPrincipal) -> HTMLResponse:
    return _page(
        request, "reports_calendar.html", principal, report="calendar", patient_id=patient_id
    )
