"""The JSON API, ``/api/v1``. Routes are thin: parse, call the SQL layer, shape the answer.

Each route names the roles it allows and goes through :mod:`dashboards.access` for the caller's
team (another team's record is a 404, audited ``denied``) and the audit trail."""

from __future__ import annotations

import base64
import logging
from datetime import timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Query

from dashboards import schemas
from dashboards import team_schemas as ts
from dashboards.access import Access, Admin, AlarmAction, AnyRole, Care, Oversight
from dashboards.deps import Db, Now, dispenser_or_404, not_found, raise_
from dashboards.fields import DispenserPath, Id, Name, errors, invalid
from dashboards.teams_api import Actor
from dosewatch.db import DbConn, registry
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import events as event_sql
from dosewatch.db import notifications as outbox_sql
from dosewatch.db import presence as presence_sql
from dosewatch.db import quarantine as quarantine_sql
from dosewatch.db import scope as scope_sql
from dosewatch.db import teams as team_sql
from dosewatch.domain.alarms import AlarmState
from dosewatch.usecases import alarm_actions, training

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1")
MAX_SLOT_RANGE = timedelta(days=62)


@router.post("/patients", status_code=201, response_model=schemas.Patient)
def create_patient(body: schemas.PatientIn, conn: Db, acc: Admin) -> dict:
    row = registry.create_patient(conn, **body.model_dump())
    acc.log("create", "patient", row["id"])
    return row


@router.get("/patients/{patient_id}", response_model=schemas.Patient, responses=errors(404))
def get_patient(patient_id: Id, conn: Db, acc: AnyRole) -> dict:
    acc.open("patient", patient_id)
    return registry.get_patient(conn, patient_id) or raise_(not_found(f"patient {patient_id}"))


@router.put(
    "/patients/{patient_id}/team", response_model=schemas.Patient, responses=errors(404, 409)
)
def put_patient_team(
    patient_id: Id, body: ts.PatientTeamIn, conn: Db, acc: Admin, actor: Actor = "api"
) -> dict[str, Any]:
    """Alarms opened from now on page this team; open alarms keep the team they started with."""
    if registry.get_patient(conn, patient_id) is None:
        raise not_found(f"patient {patient_id}")
    if body.team_id is not None and team_sql.get_team(conn, body.team_id) is None:
        invalid(("body", "team_id"), f"team {body.team_id} does not exist")
    refusal = training.patient_move_refusal(conn, patient_id, body.team_id)
    if refusal is not None:
        raise HTTPException(409, f"patient {patient_id}: {refusal}")
    team_sql.set_patient_team(conn, patient_id, body.team_id)
    acc.log("update", "patient", patient_id, team_id=body.team_id)
    log.info("patient %s moved to team %s by %s", patient_id, body.team_id, acc.claimed(actor))
    return registry.get_patient(conn, patient_id) or raise_(not_found(f"patient {patient_id}"))


def _contact(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "sms_consent": row["contact_sms_consent_at"] is not None}


@router.get(
    "/patients/{patient_id}/contact", response_model=ts.PatientContact, responses=errors(404)
)
def get_patient_contact(patient_id: Id, conn: Db, acc: Care) -> dict[str, Any]:
    acc.open("patient_contact", patient_id)
    row = team_sql.get_patient_contact(conn, patient_id)
    return _contact(row or raise_(not_found(f"patient {patient_id}")))


@router.put(
    "/patients/{patient_id}/contact", response_model=ts.PatientContact, responses=errors(404)
)
def put_patient_contact(
    patient_id: Id,
    body: ts.PatientContactIn,
    conn: Db,
    clk: Now,
    acc: Admin,
    actor: Actor = "api",
) -> dict[str, Any]:
    """The number for the optional first escalation step (an SMS reminder to the patient or a
    relative), which is sent only while consent is recorded."""
    row = team_sql.set_patient_contact(
        conn, patient_id, phone=body.contact_phone, consent=body.sms_consent, now=clk.now()
    )
    if row is None:
        raise not_found(f"patient {patient_id}")
    acc.log("update", "patient_contact", patient_id, sms_consent=body.sms_consent)
    by = acc.claimed(actor)
    log.info("patient %s contact set by %s (consent %s)", patient_id, by, body.sms_consent)
    return _contact(row)


@router.post(
    "/dispensers", status_code=201, response_model=schemas.Dispenser, responses=errors(409)
)
def create_dispenser(body: schemas.DispenserIn, conn: Db, acc: Admin) -> dict:
    if registry.get_patient(conn, body.patient_id) is None:
        invalid(("body", "patient_id"), f"patient {body.patient_id} does not exist")
    try:
        with conn.transaction():
            row = registry.create_dispenser(conn, dispenser_id=body.id, patient_id=body.patient_id)
    except psycopg.errors.UniqueViolation:
        raise HTTPException(409, f"dispenser {body.id!r} already exists") from None
    acc.log("create", "dispenser", row["id"], patient_id=body.patient_id)
    return row


@router.get(
    "/dispensers/{dispenser_id}", response_model=schemas.DispenserDetail, responses=errors(404)
)
def get_dispenser(dispenser_id: DispenserPath, conn: Db, acc: AnyRole) -> dict:
    acc.open("dispenser", dispenser_id)
    row = dispenser_or_404(conn, dispenser_id)
    return {**row, "presence": presence_sql.get_presence(conn, dispenser_id) or {}}


@router.get(
    "/dispensers/{dispenser_id}/events",
    response_model=list[schemas.DoseEvent],
    responses=errors(404),
)
def get_events(
    dispenser_id: DispenserPath,
    conn: Db,
    acc: AnyRole,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict]:
    acc.check("dispenser", dispenser_id)
    return event_sql.list_events(conn, dispenser_id, limit)


@router.get("/alarms", response_model=list[schemas.Alarm])
def list_alarms(
    conn: Db,
    acc: Care,
    state: AlarmState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict]:
    """Alarms of the caller's team (every team for managers and admins), newest first."""
    return scope_sql.list_alarms(
        conn, team_id=acc.team_scope, state=state.value if state else None, limit=limit
    )


@router.get("/alarms/{alarm_id}", response_model=schemas.AlarmDetail, responses=errors(404))
def get_alarm(alarm_id: Id, conn: Db, acc: Care) -> dict:
    acc.open("alarm", alarm_id)
    row = alarm_sql.get_alarm(conn, alarm_id) or raise_(not_found(f"alarm {alarm_id}"))
    return {
        **row,
        "history": alarm_sql.history(conn, alarm_id),
        "notifications": outbox_sql.timeline(conn, alarm_id),
    }


@router.post(
    "/alarms/{alarm_id}/acknowledge", response_model=schemas.Alarm, responses=errors(404, 409)
)
def acknowledge(
    alarm_id: Id, conn: Db, clk: Now, acc: AlarmAction, body: schemas.AcknowledgeIn | None = None
) -> alarm_sql.AlarmRow:
    acc.check("alarm", alarm_id)
    by, nurse_id = (body.by, body.nurse_id) if body else ("api", None)
    _nurse_exists(conn, nurse_id)
    by = acc.claimed(by)
    row = alarm_actions.acknowledge(conn, alarm_id, clk.now(), by, _via(acc), nurse_id=nurse_id)
    row = row or raise_(_conflict_or_404(conn, alarm_id))
    acc.log("acknowledge", "alarm", alarm_id, by=by)
    return row


@router.post("/alarms/{alarm_id}/resolve", response_model=schemas.Alarm, responses=errors(404, 409))
def resolve(
    alarm_id: Id, body: schemas.ResolveIn, conn: Db, clk: Now, acc: AlarmAction
) -> alarm_sql.AlarmRow:
    acc.check("alarm", alarm_id)
    _nurse_exists(conn, body.nurse_id)
    by = acc.claimed(body.by)
    row = alarm_actions.resolve(
        conn, alarm_id, clk.now(), by, _via(acc), body.outcome, body.note, body.nurse_id
    )
    row = row or raise_(_conflict_or_404(conn, alarm_id))
    acc.log("resolve", "alarm", alarm_id, by=by, outcome=body.outcome.value)
    return row


@router.get("/quarantine", response_model=list[schemas.QuarantineItem])
def list_quarantine(
    conn: Db,
    _acc: Oversight,
    dispenser_id: Name | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict]:
    """Raw device messages that were refused (managers and admins)."""
    rows = quarantine_sql.list_quarantine(conn, limit=limit, dispenser_id=dispenser_id)
    return [
        {
            **r,
            "payload_text": _text(r["payload"]),
            "payload_base64": base64.b64encode(r["payload"]).decode(),
        }
        for r in rows
    ]


def _text(raw: bytes) -> str | None:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _via(acc: Access) -> str:
    """How an alarm action came in, for its history: the console (a signed-in user) or the API
    (a token)."""
    return "console" if acc.principal.kind == "user" else "api"


def _nurse_exists(conn: DbConn, nurse_id: int | None) -> None:
    """The nurse an alarm action names must exist (a foreign key, checked before it fails)."""
    if nurse_id is not None and team_sql.get_nurse(conn, nurse_id) is None:
        invalid(("body", "nurse_id"), f"nurse {nurse_id} does not exist")


def _conflict_or_404(conn: DbConn, alarm_id: int) -> HTTPException:
    if alarm_sql.get_alarm(conn, alarm_id) is None:
        return not_found(f"alarm {alarm_id}")
    return HTTPException(409, f"alarm {alarm_id} is already resolved")
