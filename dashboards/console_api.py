"""The read endpoints the web console needs, and refill recording: ``/api/v1/console/*``.

Every route reads through :mod:`dosewatch.db.console` with the caller's team scope, so a nurse
never sees another team's alarm, patient or dispenser (404, as if it did not exist).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from dashboards.deps import Db, Now, not_found
from dashboards.web_principal import (
    CurrentPrincipal,
    actor,
    audit_check,
    audit_open,
    require_role,
    team_scope,
)
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import console as console_sql
from dosewatch.db import notifications as outbox_sql
from dosewatch.db import status as status_sql

router = APIRouter(prefix="/api/v1", tags=["console"])
Principal = CurrentPrincipal


class RefillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    doses_loaded: int = Field(ge=1, le=1000, description="doses put into the dispenser")


class DistrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    district: str | None = Field(default=None, max_length=100)


@router.get("/console/alarms")
def console_alarms(
    conn: Db,
    principal: Principal,
    ids: Annotated[str | None, Query(description="comma-separated alarm ids")] = None,
) -> list[dict[str, Any]]:
    """Unresolved alarms with their patient, unacknowledged and high priority first, then by
    age; or, with ``ids``, just those alarms (whatever their state)."""
    team = team_scope(principal)
    if ids:
        try:
            wanted = [int(i) for i in ids.split(",") if i.strip()][:1000]
        except ValueError:
            raise HTTPException(422, "ids: comma-separated integers") from None
        return console_sql.alarms_by_id(conn, team, wanted)
    return console_sql.active_alarms(conn, team)


@router.get("/console/alarms/{alarm_id}")
def console_alarm(
    alarm_id: int, request: Request, conn: Db, clk: Now, principal: Principal
) -> dict[str, Any]:
    """Everything a nurse needs to act on one alarm: the patient (phone, address, access and
    medication notes), the last 7 days of doses, the dispenser's health and the escalation
    timeline."""
    audit_open(request, conn, principal, "alarm", alarm_id)
    team = team_scope(principal)
    rows = console_sql.alarms_by_id(conn, team, [alarm_id])
    if not rows:
        raise not_found(f"alarm {alarm_id}")
    alarm = rows[0]
    return {
        "alarm": alarm,
        "patient": console_sql.patient(conn, team, alarm["patient_id"]),
        "doses": console_sql.recent_slots(conn, alarm["patient_id"], clk.now()),
        "health": console_sql.dispenser_health(conn, alarm["dispenser_id"]),
        "history": alarm_sql.history(conn, alarm_id),
        "notifications": outbox_sql.timeline(conn, alarm_id),
    }


@router.get("/console/patients/{patient_id}")
def console_patient(
    patient_id: int, request: Request, conn: Db, clk: Now, principal: Principal
) -> dict[str, Any]:
    audit_open(request, conn, principal, "patient", patient_id)
    team = team_scope(principal)
    patient = console_sql.patient(conn, team, patient_id)
    if patient is None:
        raise not_found(f"patient {patient_id}")
    return {"patient": patient, "doses": console_sql.recent_slots(conn, patient_id, clk.now())}


@router.get("/console/handover")
def console_handover(
    conn: Db, clk: Now, principal: Principal, hours: Annotated[int, Query(ge=1, le=72)] = 12
) -> dict[str, Any]:
    """The shift just ending: alarms opened by kind, resolved with outcomes, still active, and
    what the next shift must follow up (patient away, other, or a note)."""
    now = clk.now()
    return console_sql.handover(conn, team_scope(principal), now - timedelta(hours=hours), now)


@router.get("/console/worklist")
def refill_worklist(
    conn: Db,
    clk: Now,
    principal: Principal,
    team_id: int | None = None,
    district: str | None = None,
) -> list[dict[str, Any]]:
    """Dispensers by predicted empty time, from doses left and the planned slots."""
    team = team_scope(principal)
    if team_id is not None:
        if team is not None and team != team_id:
            return []
        team = team_id
    return console_sql.worklist(conn, team, clk.now(), district=district or None)


@router.get("/console/patients")
def console_patients(conn: Db, principal: Principal) -> list[dict[str, Any]]:
    return console_sql.patients(conn, team_scope(principal))


@router.get("/console/dispensers")
def console_dispensers(conn: Db, principal: Principal) -> list[dict[str, Any]]:
    return console_sql.dispensers(conn, team_scope(principal))


@router.put("/console/patients/{patient_id}/district")
def put_district(
    patient_id: int, body: DistrictIn, request: Request, conn: Db, principal: Principal
) -> dict[str, Any]:
    require_role(principal, "admin", "manager")
    district = (body.district or "").strip() or None
    if not console_sql.set_district(conn, team_scope(principal), patient_id, district):
        raise not_found(f"patient {patient_id}")
    return {"patient_id": patient_id, "district": district}


@router.get("/dispensers/{dispenser_id}/refills")
def list_refills(
    dispenser_id: str, request: Request, conn: Db, principal: Principal
) -> list[dict[str, Any]]:
    audit_check(request, conn, principal, "dispenser", dispenser_id)
    if console_sql.dispenser_in_scope(conn, team_scope(principal), dispenser_id) is None:
        raise not_found(f"dispenser {dispenser_id!r}")
    return status_sql.refills(conn, dispenser_id)


@router.post("/dispensers/{dispenser_id}/refills", status_code=201)
def record_refill(
    dispenser_id: str,
    body: RefillIn,
    request: Request,
    conn: Db,
    clk: Now,
    principal: Principal,
) -> dict[str, Any]:
    """Record a refill done on a round: who, when, how many doses; doses left goes up."""
    require_role(principal, "pharmacist", "nurse", "admin")
    audit_check(request, conn, principal, "dispenser", dispenser_id)
    if console_sql.dispenser_in_scope(conn, team_scope(principal), dispenser_id) is None:
        raise not_found(f"dispenser {dispenser_id!r}")
    return console_sql.record_refill(
        conn, dispenser_id, body.doses_loaded, actor(principal), clk.now()
    )
