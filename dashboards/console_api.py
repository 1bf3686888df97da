"""The read endpoints the web console needs, and refill recording: ``/api/v1/console/*``.

Every route reads through :mod:`dosewatch.db.console` with the caller's team scope, so a nurse
never sees another team's alarm, patient or dispenser (404, as if it did not exist).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from dashboards.access import AnyRole, Oversight, Refill
from dashboards.deps import Db, Now, not_found
from dashboards.fields import BIGINT_MAX, DispenserPath, Id, Name, errors, hhmm, invalid
from dosewatch.db import DbConn
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import console as console_sql
from dosewatch.db import notifications as outbox_sql
from dosewatch.db import schedules as schedule_sql
from dosewatch.db import status as status_sql

router = APIRouter(prefix="/api/v1", tags=["console"])


class RefillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    doses_loaded: int = Field(ge=1, le=1000, description="doses put into the dispenser")


class DistrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    district: Name | None = Field(default=None, description="null or empty: no district")


IDS = r"^\s*[0-9]{1,19}\s*(,\s*[0-9]{1,19}\s*)*,?$"


@router.get("/console/alarms")
def console_alarms(
    conn: Db,
    acc: AnyRole,
    ids: Annotated[
        str | None,
        Query(max_length=20_000, pattern=IDS, description="comma-separated alarm ids"),
    ] = None,
) -> list[dict[str, Any]]:
    """Unresolved alarms with their patient, unacknowledged and high priority first, then by
    age; or, with ``ids``, just those alarms (whatever their state)."""
    if ids:
        wanted = [int(i) for i in ids.split(",") if i.strip()][:1000]
        if any(i > BIGINT_MAX for i in wanted):
            invalid(("query", "ids"), f"an alarm id is at most {BIGINT_MAX}")
        return console_sql.alarms_by_id(conn, acc.team_scope, wanted)
    return console_sql.active_alarms(conn, acc.team_scope)


@router.get("/console/alarms/{alarm_id}", responses=errors(404))
def console_alarm(
    alarm_id: Id, request: Request, conn: Db, clk: Now, acc: AnyRole
) -> dict[str, Any]:
    """Everything a nurse needs to act on one alarm: the patient (phone, address, access and
    medication notes), the last 7 days of doses, the dispenser's health and the escalation
    timeline."""
    acc.open("alarm", alarm_id)
    team = acc.team_scope
    rows = console_sql.alarms_by_id(conn, team, [alarm_id])
    if not rows:
        raise not_found(f"alarm {alarm_id}")
    alarm = rows[0]
    doses = console_sql.recent_slots(conn, alarm["patient_id"], clk.now())
    return {
        "alarm": alarm,
        "patient": console_sql.patient(conn, team, alarm["patient_id"]),
        "doses": _doses(conn, request, doses),
        "health": console_sql.dispenser_health(conn, alarm["dispenser_id"]),
        "history": alarm_sql.history(conn, alarm_id),
        "notifications": outbox_sql.timeline(conn, alarm_id),
    }


@router.get("/console/patients/{patient_id}", responses=errors(404))
def console_patient(
    patient_id: Id, request: Request, conn: Db, clk: Now, acc: AnyRole
) -> dict[str, Any]:
    acc.open("patient", patient_id)
    patient = console_sql.patient(conn, acc.team_scope, patient_id)
    if patient is None:
        raise not_found(f"patient {patient_id}")
    doses = _doses(conn, request, console_sql.recent_slots(conn, patient_id, clk.now()))
    return {"patient": patient, "doses": doses}


def _doses(conn: DbConn, request: Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each dose with ``local_time`` as everywhere in the API: ``HH:MM`` when the dispenser
    presents it (in its schedule's zone), and ``scheduled_time`` as the schedule has it."""
    zones: dict[str, ZoneInfo] = {}
    out = []
    for row in rows:
        dispenser = row["dispenser_id"]
        if dispenser not in zones:
            current = schedule_sql.current_schedule(conn, dispenser)
            zones[dispenser] = ZoneInfo(
                current["timezone"] if current else request.app.state.default_timezone
            )
        scheduled = row.get("local_time")
        out.append(
            {
                **row,
                "local_time": hhmm(row["due_at"].astimezone(zones[dispenser])),
                "scheduled_time": hhmm(scheduled) if scheduled else None,
            }
        )
    return out


@router.get("/console/handover")
def console_handover(
    conn: Db, clk: Now, acc: AnyRole, hours: Annotated[int, Query(ge=1, le=72)] = 12
) -> dict[str, Any]:
    """The shift just ending: alarms opened by kind, resolved with outcomes, still active, and
    what the next shift must follow up (patient away, other, or a note)."""
    now = clk.now()
    return console_sql.handover(conn, acc.team_scope, now - timedelta(hours=hours), now)


@router.get("/console/worklist")
def refill_worklist(
    conn: Db,
    clk: Now,
    acc: AnyRole,
    team_id: Id | None = None,
    district: Name | None = None,
) -> list[dict[str, Any]]:
    """Dispensers by predicted empty time, from doses left and the planned slots."""
    team = acc.team_scope
    if team_id is not None:
        if team is not None and team != team_id:
            return []
        team = team_id
    return console_sql.worklist(conn, team, clk.now(), district=district or None)


@router.get("/console/patients")
def console_patients(conn: Db, acc: AnyRole) -> list[dict[str, Any]]:
    return console_sql.patients(conn, acc.team_scope)


@router.get("/console/dispensers")
def console_dispensers(conn: Db, acc: AnyRole) -> list[dict[str, Any]]:
    return console_sql.dispensers(conn, acc.team_scope)


@router.put("/console/patients/{patient_id}/district", responses=errors(404))
def put_district(patient_id: Id, body: DistrictIn, conn: Db, acc: Oversight) -> dict[str, Any]:
    district = body.district or None
    if not console_sql.set_district(conn, acc.team_scope, patient_id, district):
        raise not_found(f"patient {patient_id}")
    return {"patient_id": patient_id, "district": district}


@router.get("/dispensers/{dispenser_id}/refills", responses=errors(404))
def list_refills(dispenser_id: DispenserPath, conn: Db, acc: AnyRole) -> list[dict[str, Any]]:
    acc.check("dispenser", dispenser_id)
    if console_sql.dispenser_in_scope(conn, acc.team_scope, dispenser_id) is None:
        raise not_found(f"dispenser {dispenser_id!r}")
    return status_sql.refills(conn, dispenser_id)


@router.post("/dispensers/{dispenser_id}/refills", status_code=201, responses=errors(404))
def record_refill(
    dispenser_id: DispenserPath, body: RefillIn, conn: Db, clk: Now, acc: Refill
) -> dict[str, Any]:
    """Record a refill done on a round: who, when, how many doses; doses left goes up."""
    acc.check("dispenser", dispenser_id)
    if console_sql.dispenser_in_scope(conn, acc.team_scope, dispenser_id) is None:
        raise not_found(f"dispenser {dispenser_id!r}")
    by = acc.principal.name[:100]
    return console_sql.record_refill(conn, dispenser_id, body.doses_loaded, by, clk.now())
