"""The HTML pages: sign-in, the alarm console, the handover, the refill worklist and admin.

Pages are server-rendered shells in the user's language (Jinja2 templates and the JSON
catalogues in ``web/i18n``); their data comes from ``/api/v1`` in the browser, so every read
goes through the API's team scoping. A signed-out visitor is sent to ``/login``. Every script,
style and sound is served from ``/static`` (``web/static``): nothing is fetched from elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dashboards.access import CurrentPrincipal
from dashboards.auth import Principal
from dashboards.fields import Id, Name
from dosewatch import __version__

WEB = Path(__file__).parent / "web"
LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"
ADMIN_SECTIONS = (
    "patients", "dispensers", "schedules", "absences", "teams", "rosters", "policies",
    "integrations", "training",
)  # fmt: skip
START_PAGE = {"nurse": "/console", "pharmacist": "/worklist", "manager": "/reports"}


class _PageRoute(APIRoute):
    """A page asked for while signed out redirects to the sign-in page instead of a 401."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:
                if exc.status_code != 401:
                    raise
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

        return page


@cache
def catalogue(language: str) -> dict[str, str]:
    """``{language}.json`` plus any ``{language}.<area>.json`` (each area keeps its own texts)."""
    data: dict[str, str] = json.loads((WEB / "i18n" / f"{language}.json").read_text("utf-8"))
    for extra in sorted((WEB / "i18n").glob(f"{language}.*.json")):
        data.update(json.loads(extra.read_text("utf-8")))
    return data


@cache
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(WEB / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _script_json(value: object) -> str:
    """JSON safe inside <script type=application/json>: no "</script>" can end it early."""
    return json.dumps(value, ensure_ascii=False, default=str).replace("</", "<\\/")


def language_of(request: Request, principal: Principal | None) -> str:
    """The user's own language; before sign-in, the last one used here, else the browser's."""
    chosen = (principal.language if principal else None) or request.cookies.get("dw_lang")
    if chosen in LANGUAGES:
        return str(chosen)
    accept = request.headers.get("accept-language", "").lower()
    for part in accept.split(","):
        tag = part.split(";")[0].strip()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


def render(
    request: Request, template: str, principal: Principal | None, **context: Any
) -> HTMLResponse:
    lang = language_of(request, principal)
    texts = catalogue(lang)

    def t(key: str, **kw: Any) -> str:
        text = texts.get(key) or catalogue("en").get(key) or key
        return text.format(**kw) if kw else text

    user = None
    if principal is not None:
        user = {
            "name": principal.name,
            "role": principal.role,
            "team_id": principal.team_id,
            "language": lang,
        }
    page = {
        "lang": lang,
        "timezone": request.app.state.default_timezone,
        "user": user,
        "version": __version__,
    }
    html = (
        _env()
        .get_template(template)
        .render(
            t=t,
            lang=lang,
            user=user,
            page_json=_script_json(page),
            i18n_json=_script_json(texts),
            admin_sections=ADMIN_SECTIONS,
            path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


router = APIRouter(route_class=_PageRoute, include_in_schema=False)


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/``: where sign-in may send a browser.

    A deep link (``/console?alarm=17`` from an SMS) survives the sign-in this way, while
    ``/login?next=https://evil.example`` cannot send a nurse elsewhere. Browsers read ``//host``,
    ``/\\host`` and a path with a tab or newline in it (which they strip) as another host, so
    those are refused too.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", None, next=local_path(request.query_params.get("next")))


@router.get("/")
def home(principal: CurrentPrincipal) -> RedirectResponse:
    role = principal.role
    target = "/admin/patients" if role == "admin" else START_PAGE.get(role, "/console")
    return RedirectResponse(target, status_code=303)


@router.get("/console")
def console_page(request: Request, principal: CurrentPrincipal) -> HTMLResponse:
    return render(request, "console.html", principal)


@router.get("/handover")
def handover_page(request: Request, principal: CurrentPrincipal) -> HTMLResponse:
    return render(request, "handover.html", principal)


@router.get("/worklist")
def worklist_page(request: Request, principal: CurrentPrincipal) -> HTMLResponse:
    return render(request, "worklist.html", principal)


@router.get("/patients/{patient_id}")
def patient_page(patient_id: Id, request: Request, principal: CurrentPrincipal) -> HTMLResponse:
    return render(request, "patient.html", principal, patient_id=patient_id)


@router.get("/admin")
def admin_home() -> RedirectResponse:
    return RedirectResponse("/admin/patients", status_code=303)


@router.get("/admin/{section}")
def admin_page(section: Name, request: Request, principal: CurrentPrincipal) -> HTMLResponse:
    if section not in ADMIN_SECTIONS:
        raise HTTPException(404, f"no admin page {section!r}")
    return render(request, "admin.html", principal, section=section)


def static_files() -> StaticFiles:
    return StaticFiles(directory=WEB / "static")
