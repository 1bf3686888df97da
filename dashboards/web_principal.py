"""Who is asking, for the web console's routes, through the sign-in module's dependency.

Sign-in, sessions, CSRF tokens and API tokens belong to :mod:`dashboards.auth`. This module only
looks that dependency up (at import time of the route modules, inside a function, so the console
does not hard-wire a module that may land later) and derives the team scope from the principal.
CSRF is checked by the sign-in middleware for every state change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request


def auth_dependency() -> Callable[..., Any] | None:
    try:
        from dashboards.auth import current_principal
    except ImportError:
        return None
    return current_principal  # type: ignore[no-any-return]


def _no_sign_in() -> None:
    return None


def principal_param() -> Any:
    """``Depends`` on the signed-in principal (401 when signed out), or on ``None`` when the
    sign-in module is not installed."""
    return Depends(auth_dependency() or _no_sign_in)


# A route's caller: ``principal: CurrentPrincipal``.
CurrentPrincipal = Annotated[Any, principal_param()]


def team_scope(principal: Any) -> int | None:
    """``None`` reads every team; else the one team this principal may read (the sign-in
    module's rule, :attr:`Principal.team_scope`)."""
    if principal is None:
        return None
    scope = principal.team_scope
    return None if scope is None else int(scope)


def actor(principal: Any) -> str:
    """The person's name, as stored for "by whom" (acknowledged_by, refills' staff)."""
    return str(getattr(principal, "name", None) or "console")[:100]


def require_role(principal: Any, *roles: str) -> None:
    if principal is not None and getattr(principal, "role", None) not in roles:
        raise HTTPException(403, f"the {principal.role} role may not do this")


def _access(request: Request, conn: Any, principal: Any) -> Any | None:
    if principal is None:
        return None
    try:
        from dashboards.access import Access
    except ImportError:
        return None
    return Access(request, conn, principal)


def audit_open(
    request: Request, conn: Any, principal: Any, kind: str, object_id: int | str
) -> None:
    """The sign-in module's check and audit of opening a record: 404 (audited ``denied``) for
    another team's record, ``open`` in the audit log otherwise."""
    access = _access(request, conn, principal)
    if access is not None:
        access.open(kind, object_id)


def audit_check(
    request: Request, conn: Any, principal: Any, kind: str, object_id: int | str
) -> None:
    """The same check without an ``open`` entry (a record not opened, e.g. refill history)."""
    access = _access(request, conn, principal)
    if access is not None:
        access.check(kind, object_id)
