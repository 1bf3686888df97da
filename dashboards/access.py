"""Role checks, team scoping and the audit trail, for routes: one object per request.

A route takes one :class:`Access` for the roles it allows, e.g. ``acc: Care``::

    @router.get("/alarms/{alarm_id}")
    def get_alarm(alarm_id: Id, conn: Db, acc: Care) -> dict:
        acc.open("alarm", alarm_id)        # 404 + audit 'denied' unless in the caller's team;
        ...                                # audit 'open' otherwise

- the role check comes first (403), before any id is looked up;
- an object of another team answers exactly like one that does not exist (404), so ids are
  not confirmed, and the attempt is audited as ``denied``. That audit row is written after the
  request's transaction has rolled back (see :func:`dashboards.deps.db`), so it is kept;
- changes are audited in the request's own transaction: the change and its audit row commit
  together or not at all (:meth:`Access.log`).

Lists filter by :attr:`Access.team_scope` in SQL (:mod:`dosewatch.db.scope`).

This is the one authorisation path: the JSON routes take an :class:`Access`; the HTML pages and
the alarm stream, which only need to know who is asking, take :data:`CurrentPrincipal` (401
when signed out), the same typed :class:`~dashboards.auth.Principal`.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from dashboards.auth import Principal, current_principal, require_roles
from dashboards.deps import Db, not_found
from dosewatch.db import DbConn
from dosewatch.db import audit as audit_sql
from dosewatch.db import scope as scope_sql

# Who may do what (see docs in the README's security section).
ALL = ("nurse", "pharmacist", "manager", "admin")
CARE = ("nurse", "manager", "admin")
ALARM_ACTION = ("nurse", "admin")
REFILL = ("pharmacist", "nurse", "admin")
OVERSIGHT = ("manager", "admin")
ADMIN = ("admin",)

_LABEL = {"patient_contact": "patient"}


def audit_entry(
    request: Request,
    principal: Principal | None,
    action: str,
    object_type: str | None = None,
    object_id: int | str | None = None,
    detail: dict[str, Any] | None = None,
    *,
    actor_name: str | None = None,
) -> audit_sql.Entry:
    """An audit row for this request: the caller, the server's clock, the client's address."""
    return audit_sql.Entry(
        at=request.app.state.clock.now(),
        actor_kind=principal.kind if principal else "anonymous",
        actor_id=principal.id if principal else None,
        actor_name=actor_name or (principal.actor if principal else "anonymous"),
        actor_role=principal.role if principal else None,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=detail or {},
        client_ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def defer_audit(request: Request, entry: audit_sql.Entry) -> None:
    """Write ``entry`` even if the request fails (after its transaction), via :func:`db`."""
    request.state.audit_deferred.append(entry)


class Access:
    def __init__(self, request: Request, conn: DbConn, principal: Principal) -> None:
        self.request, self.conn, self.principal = request, conn, principal

    @property
    def team_scope(self) -> int | None:
        return self.principal.team_scope

    @property
    def actor(self) -> str:
        return self.principal.actor

    def claimed(self, claimed: str | None) -> str:
        """The name stored as "by" on a change. A user is who they signed in as; a machine
        client may name the person it acts for (the audit log still names the token)."""
        if self.principal.kind == "token" and claimed and claimed != "api":
            return claimed
        return self.principal.name if self.principal.kind == "user" else self.actor

    def check(self, kind: str, object_id: int | str) -> None:
        """404 unless the object exists and the caller's team owns it; audits a denial."""
        teams = scope_sql.teams_of(self.conn, kind, object_id)
        name = _LABEL.get(kind, kind)
        shown = repr(object_id) if kind == "dispenser" else str(object_id)
        missing = not_found(f"{name} {shown}")
        if teams is None:
            raise missing
        if not scope_sql.visible(teams, self.team_scope):
            detail = {"method": self.request.method, "path": self.request.url.path}
            defer_audit(
                self.request, audit_entry(self.request, self.principal, "denied", kind,
                                          object_id, detail)
            )  # fmt: skip
            raise missing

    def open(self, kind: str, object_id: int | str) -> None:
        """:meth:`check`, then audit that the record was opened."""
        self.check(kind, object_id)
        self.log("open", kind, object_id)

    def log(
        self, action: str, object_type: str, object_id: int | str | None, **detail: Any
    ) -> None:
        """Audit a change (or an opening) in the request's transaction."""
        audit_sql.record(
            self.conn,
            audit_entry(self.request, self.principal, action, object_type, object_id, detail),
        )


def guard(*roles: str) -> Callable[[Request, DbConn, Principal], Access]:
    role_check = require_roles(*roles)

    def access(
        request: Request, conn: Db, principal: Annotated[Principal, Depends(role_check)]
    ) -> Access:
        return Access(request, conn, principal)

    return access


# A page's or stream's caller (401 when signed out).
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def team_scope(principal: Principal) -> int | None:
    """``None`` reads every team; else the one team this caller may read."""
    return principal.team_scope


AnyRole = Annotated[Access, Depends(guard(*ALL))]
Care = Annotated[Access, Depends(guard(*CARE))]
AlarmAction = Annotated[Access, Depends(guard(*ALARM_ACTION))]
Oversight = Annotated[Access, Depends(guard(*OVERSIGHT))]
Refill = Annotated[Access, Depends(guard(*REFILL))]
Admin = Annotated[Access, Depends(guard(*ADMIN))]
