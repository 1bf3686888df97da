"""Teams, nurses, rosters and escalation policies: ``/api/v1/teams``, ``/nurses``, ``/shifts``.
(A patient's team and SMS contact are with the patient, in :mod:`dashboards.api`.)

Routes are thin, like :mod:`dashboards.schedules_api`: the body models check shapes, the SQL
layer (:mod:`dosewatch.db.teams`) stores, and the pure rules decide (:mod:`dosewatch.domain.
roster` for gaps, :func:`dosewatch.domain.escalation.validate` for policies). A rule that needs
the database (the nurse is in this team, is active, is not already on another shift) is checked
here, inside the request's transaction, after locking the nurse row so two requests cannot both
pass the overlap check.

Who may do what is checked by :mod:`dashboards.access`: teams are readable by every role,
nurses, shifts, gaps and policies by nurses, managers and admins, all within the caller's team
(managers and admins: every team); changes are for admins and are audited. Who made a change is
the signed-in user; a machine client (API token) may name the person it acts for in
``X-Actor``. Only policy versions have a column for it; the audit log has every change.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Header, HTTPException, Query, Response

from dashboards import team_schemas as ts
from dashboards.access import Access, Admin, AnyRole, Care
from dashboards.deps import Db, Now, not_found, raise_
from dashboards.fields import By, Id, Instant, errors, invalid
from dosewatch.db import DbConn
from dosewatch.db import teams as team_sql
from dosewatch.domain import roster
from dosewatch.domain.escalation import DEFAULT_POLICY, Policy, validate
from dosewatch.usecases import rosters

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["teams and rosters"])
MAX_RANGE = timedelta(days=62)
DEFAULT_SPAN = timedelta(days=7)

Actor = Annotated[
    By, Header(alias="X-Actor", description="for API tokens: the person the change is made for")
]
From = Annotated[Instant | None, Query(alias="from", description="default: now")]
To = Annotated[Instant | None, Query(description="default: from + 7 days; at most 62 days")]


def _team(conn: DbConn, team_id: int, acc: Access) -> dict[str, Any]:
    acc.check("team", team_id)
    return team_sql.get_team(conn, team_id) or raise_(not_found(f"team {team_id}"))


def _range(
    now: datetime, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    start = start or now
    end = end or start + DEFAULT_SPAN
    if end <= start or end - start > MAX_RANGE:
        invalid(("query", "to"), "to must be after from, and at most 62 days later")
    # Answers speak UTC, like every instant the database returns.
    return start.astimezone(UTC), end.astimezone(UTC)


# --- teams -----------------------------------------------------------------------------------


@router.post("/teams", status_code=201, response_model=ts.Team, responses=errors(409))
def create_team(
    body: ts.TeamIn, conn: Db, clk: Now, acc: Admin, actor: Actor = "api"
) -> dict[str, Any]:
    try:
        with conn.transaction():
            row = team_sql.create_team(conn, body.name, clk.now())
    except psycopg.errors.UniqueViolation:
        raise HTTPException(409, f"a team named {body.name!r} already exists") from None
    acc.log("create", "team", row["id"], name=body.name)
    log.info("team %s created by %s", row["id"], acc.claimed(actor))
    return row


@router.get("/teams", response_model=list[ts.Team])
def list_teams(conn: Db, acc: AnyRole) -> list[dict[str, Any]]:
    """Every team for managers and admins; a nurse's or pharmacist's own team for them."""
    teams = team_sql.list_teams(conn)
    return [t for t in teams if acc.team_scope in (None, t["id"])]


@router.get("/teams/{team_id}", response_model=ts.Team, responses=errors(404))
def get_team(team_id: Id, conn: Db, acc: AnyRole) -> dict[str, Any]:
    return _team(conn, team_id, acc)


# --- nurses ----------------------------------------------------------------------------------


@router.post("/nurses", status_code=201, response_model=ts.Nurse)
def create_nurse(
    body: ts.NurseIn, conn: Db, clk: Now, acc: Admin, actor: Actor = "api"
) -> dict[str, Any]:
    if team_sql.get_team(conn, body.team_id) is None:
        invalid(("body", "team_id"), f"team {body.team_id} does not exist")
    row = team_sql.create_nurse(conn, **body.model_dump(), now=clk.now())
    acc.log("create", "nurse", row["id"], team_id=body.team_id)
    log.info("nurse %s added to team %s by %s", row["id"], body.team_id, acc.claimed(actor))
    return row


@router.get("/nurses", response_model=list[ts.Nurse], responses=errors(404))
def list_nurses(conn: Db, acc: Care, team_id: Id | None = None) -> list[dict[str, Any]]:
    if team_id is not None:
        _team(conn, team_id, acc)
    return team_sql.list_nurses(conn, team_id if team_id is not None else acc.team_scope)


@router.get("/nurses/{nurse_id}", response_model=ts.Nurse, responses=errors(404))
def get_nurse(nurse_id: Id, conn: Db, acc: Care) -> dict[str, Any]:
    acc.check("nurse", nurse_id)
    return team_sql.get_nurse(conn, nurse_id) or raise_(not_found(f"nurse {nurse_id}"))


@router.patch("/nurses/{nurse_id}", response_model=ts.Nurse, responses=errors(404))
def update_nurse(
    nurse_id: Id, body: ts.NursePatch, conn: Db, acc: Admin, actor: Actor = "api"
) -> dict[str, Any]:
    """Deactivating a nurse keeps their shifts; the roster-gaps check then flags them."""
    row = team_sql.update_nurse(conn, nurse_id, **body.model_dump())
    if row is None:
        raise not_found(f"nurse {nurse_id}")
    changes = body.model_dump(exclude_none=True)
    acc.log("update", "nurse", nurse_id, **changes)
    log.info("nurse %s changed by %s: %s", nurse_id, acc.claimed(actor), changes)
    return row


# --- shifts and gaps -------------------------------------------------------------------------


@router.post(
    "/teams/{team_id}/shifts", status_code=201, response_model=ts.Shift, responses=errors(404, 409)
)
def create_shift(
    team_id: Id, body: ts.ShiftIn, conn: Db, acc: Admin, actor: Actor = "api"
) -> dict[str, Any]:
    _team(conn, team_id, acc)
    try:
        row = rosters.add_shift(
            conn, team_id, body.nurse_id, body.starts_at, body.ends_at, body.role.value
        )
    except rosters.ShiftRefused as refused:
        if refused.clash:
            raise HTTPException(409, str(refused)) from None
        invalid(("body", "nurse_id"), str(refused))
    acc.log("create", "shift", row["id"], team_id=team_id, nurse_id=body.nurse_id)
    log.info("shift %s added to team %s by %s", row["id"], team_id, acc.claimed(actor))
    return row


@router.get("/teams/{team_id}/shifts", response_model=list[ts.Shift], responses=errors(404))
def list_shifts(
    team_id: Id, conn: Db, clk: Now, acc: Care, from_: From = None, to: To = None
) -> list[dict[str, Any]]:
    """Shifts overlapping the period, including one already running at ``from``."""
    _team(conn, team_id, acc)
    start, end = _range(clk.now(), from_, to)
    return team_sql.list_shifts(conn, team_id, start, end)


@router.delete("/shifts/{shift_id}", status_code=204, responses=errors(404))
def delete_shift(shift_id: Id, conn: Db, acc: Admin, actor: Actor = "api") -> Response:
    row = team_sql.delete_shift(conn, shift_id)
    if row is None:
        raise not_found(f"shift {shift_id}")
    acc.log("delete", "shift", shift_id, team_id=row["team_id"])
    log.info("shift %s of team %s deleted by %s", shift_id, row["team_id"], acc.claimed(actor))
    return Response(status_code=204)


@router.get("/teams/{team_id}/roster-gaps", response_model=ts.RosterGaps, responses=errors(404))
def roster_gaps(
    team_id: Id, conn: Db, clk: Now, acc: Care, from_: From = None, to: To = None
) -> dict[str, Any]:
    """Stretches of the period with no reachable (active, with a phone) primary or backup nurse
    on duty: an alarm then would reach no one. Flagged ahead of time, so the roster is fixed."""
    _team(conn, team_id, acc)
    start, end = _range(clk.now(), from_, to)
    shifts = team_sql.roster(conn, team_id, start, end)
    reachable = team_sql.reachable_nurse_ids(conn, team_id)
    found = roster.gaps(shifts, start, end, reachable)
    return {
        "team_id": team_id,
        "from": start,
        "to": end,
        "covered": not found,
        "gaps": [
            {
                "starts_at": lo,
                "ends_at": hi,
                "duration_min": int((hi - lo).total_seconds() // 60),
                "unreachable_nurse_ids": roster.unreachable_in(shifts, (lo, hi), reachable),
            }
            for lo, hi in found
        ],
    }


# --- escalation policies ---------------------------------------------------------------------


def _version(row: dict[str, Any]) -> dict[str, Any]:
    # Normalised through the domain type, so a row written by hand reads like one the API wrote.
    return {**row, "policy": Policy.from_json(row["policy"]).to_json()}


@router.put(
    "/teams/{team_id}/escalation-policy", response_model=ts.CurrentPolicy, responses=errors(404)
)
def put_policy(
    team_id: Id, body: ts.PolicyBody, conn: Db, clk: Now, acc: Admin, actor: Actor = "api"
) -> dict[str, Any]:
    """Store a new version. Alarms already open keep the policy they copied when they opened.

    Putting the policy that is already current stores nothing (a retried request makes no
    second version)."""
    if not team_sql.lock_team(conn, team_id):
        raise not_found(f"team {team_id}")
    policy = body.to_policy()
    problems = validate(policy)
    if problems:
        invalid(("body",), "; ".join(problems))
    current = team_sql.current_policy(conn, team_id)
    if current is None or Policy.from_json(current["policy"]) != policy:
        by = acc.claimed(actor)
        current = team_sql.save_policy(
            conn, team_id, policy.to_json(), created_by=by, now=clk.now()
        )
        acc.log("create", "escalation_policy", team_id, version=current["version"])
        log.info("team %s policy version %s by %s", team_id, current["version"], by)
    return {**_version(current), "is_default": False}


@router.get(
    "/teams/{team_id}/escalation-policy", response_model=ts.CurrentPolicy, responses=errors(404)
)
def get_policy(team_id: Id, conn: Db, acc: Care) -> dict[str, Any]:
    _team(conn, team_id, acc)
    current = team_sql.current_policy(conn, team_id)
    if current is not None:
        return {**_version(current), "is_default": False}
    return {
        "team_id": team_id,
        "is_default": True,
        "version": None,
        "created_at": None,
        "created_by": None,
        "policy": DEFAULT_POLICY.to_json(),
    }


@router.get(
    "/teams/{team_id}/escalation-policy/history",
    response_model=list[ts.PolicyVersion],
    responses=errors(404),
)
def policy_history(team_id: Id, conn: Db, acc: Care) -> list[dict[str, Any]]:
    """Every version, oldest first, with who stored it and when."""
    _team(conn, team_id, acc)
    return [_version(r) for r in team_sql.policy_history(conn, team_id)]
