"""The error answers every route can give without saying so itself, added to the OpenAPI,
and the last line of defence for a value PostgreSQL refuses.

Some 4xx do not come from a route's own code: the sign-in middleware answers 401 and 403
(:mod:`dashboards.auth`), a role check answers 403, and FastAPI answers 400 to a body it cannot
decode (not UTF-8). They are added to each operation that can really give them, when the schema
is first built, so a route included after :func:`document` is called is covered too. A route
lists its own answers (404, 409, ...) with ``responses=errors(...)`` (:mod:`dashboards.fields`).

The boundary types should stop every value the database would refuse; if one still gets
through (a check forgotten on a new route), :func:`refused` answers 422 in the standard shape
with PostgreSQL's reason, and logs it as the bug it is, instead of a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts

from dashboards.auth import CSRF_EXEMPT, SIGNED_IN_PATHS, UNSAFE_METHODS, protected
from dashboards.fields import ErrorBody, errors
from dosewatch.db.users import ROLES

log = logging.getLogger(__name__)
_EVERY_ROLE = frozenset(ROLES)


async def refused(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL refused (data or integrity error): 422, never a 500."""
    reason = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
    log.warning("%s %s: the database refused a value the API let through: %s",
                request.method, request.url.path, reason)  # fmt: skip
    error = {"loc": ["request"], "msg": f"the database refused a value: {reason}",
             "type": "database_refused"}  # fmt: skip
    return JSONResponse({"detail": jsonable_encoder([error])}, status_code=422)


def install(app: FastAPI) -> None:
    """:func:`refused` for the database's data and integrity errors, and :func:`document`."""
    app.add_exception_handler(psycopg.errors.DataError, refused)
    app.add_exception_handler(psycopg.errors.IntegrityError, refused)
    document(app)


def _role_limited(dependant: Dependant) -> bool:
    """Some role is refused (403) by a ``require_roles`` check among the dependencies."""
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "roles", None)
        if (roles is not None and not roles >= _EVERY_ROLE) or _role_limited(dep):
            return True
    return False


def _answers(route: APIRoute, path: str) -> list[int]:
    codes = []
    if route.body_field is not None:
        codes.append(400)  # FastAPI: "There was an error parsing the body"
    if protected(path) or path in SIGNED_IN_PATHS:
        codes.append(401)
    unsafe = bool((route.methods or set()) & UNSAFE_METHODS)
    if (unsafe and not path.startswith(CSRF_EXEMPT)) or _role_limited(route.dependant):
        codes.append(403)  # a session cookie without its CSRF token; a role refused
    return codes


def document(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI list, per operation, the answers described above. The generated
    document is amended (idempotently, each time it is asked for), not the routes: FastAPI
    builds included routers' effective routes lazily, from the originals."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        spec = build()
        paths = spec.get("paths", {})
        for ctx in iter_route_contexts(app.routes):
            route, path = ctx.original_route, ctx.path_format
            if not isinstance(route, APIRoute) or path is None or path not in paths:
                continue
            for method in ctx.methods or ():
                operation = paths[path].get(method.lower())
                if operation is None:
                    continue
                for code in _answers(route, path):
                    operation["responses"].setdefault(str(code), _error(code))
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _error(code: int) -> dict[str, Any]:
    return {
        "description": errors(code)[code]["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
