"""The JSON API, ``/api/v1``. Routes are thin: parse, call the SQL layer, shape the answer."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Annotated

import psycopg
from fastapi import APIRouter, HTTPException, Query

from dashboards import schemas
from dashboards.deps import Db, Now, dispenser_or_404, not_found, raise_
from dosewatch.db import DbConn, registry
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import events as event_sql
from dosewatch.db import notifications as outbox_sql
from dosewatch.db import presence as presence_sql
from dosewatch.db import quarantine as quarantine_sql
from dosewatch.domain.alarms import AlarmState

router = APIRouter(prefix="/api/v1")
MAX_SLOT_RANGE = timedelta(days=62)


@router.post("/patients", status_code=201, response_model=schemas.Patient)
def create_patient(body: schemas.PatientIn, conn: Db) -> dict:
    return registry.create_patient(conn, **body.model_dump())


@router.get("/patients/{patient_id}", response_model=schemas.Patient)
def get_patient(patient_id: int, conn: Db) -> dict:
    return registry.get_patient(conn, patient_id) or raise_(not_found(f"patient {patient_id}"))


@router.post("/dispensers", status_code=201, response_model=schemas.Dispenser)
def create_dispenser(body: schemas.DispenserIn, conn: Db) -> dict:
    if registry.get_patient(conn, body.patient_id) is None:
        raise HTTPException(422, f"patient {body.patient_id} does not exist")
    try:
        with conn.transaction():
            return registry.create_dispenser(conn, dispenser_id=body.id, patient_id=body.patient_id)
    except psycopg.errors.UniqueViolation:
        raise HTTPException(409, f"dispenser {body.id!r} already exists") from None


@router.get("/dispensers/{dispenser_id}", response_model=schemas.DispenserDetail)
def get_dispenser(dispenser_id: str, conn: Db) -> dict:
    row = dispenser_or_404(conn, dispenser_id)
    return {**row, "presence": presence_sql.get_presence(conn, dispenser_id) or {}}


@router.get("/dispensers/{dispenser_id}/events", response_model=list[schemas.DoseEvent])
def get_events(
    dispenser_id: str, conn: Db, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict]:
    dispenser_or_404(conn, dispenser_id)
    return event_sql.list_events(conn, dispenser_id, limit)


@router.get("/alarms", response_model=list[schemas.Alarm])
def list_alarms(
    conn: Db, state: AlarmState | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[dict]:
    return alarm_sql.list_alarms(conn, state=state.value if state else None, limit=limit)


@router.get("/alarms/{alarm_id}", response_model=schemas.AlarmDetail)
def get_alarm(alarm_id: int, conn: Db) -> dict:
    row = alarm_sql.get_alarm(conn, alarm_id) or raise_(not_found(f"alarm {alarm_id}"))
    return {
        **row,
        "history": alarm_sql.history(conn, alarm_id),
        "notifications": outbox_sql.timeline(conn, alarm_id),
    }


@router.post("/alarms/{alarm_id}/acknowledge", response_model=schemas.Alarm)
def acknowledge(
    alarm_id: int, conn: Db, clk: Now, body: schemas.AcknowledgeIn | None = None
) -> dict:
    by, nurse_id = (body.by, body.nurse_id) if body else ("api", None)
    row = alarm_sql.acknowledge(conn, alarm_id, clk.now(), by, "api", nurse_id=nurse_id)
    return row or raise_(_conflict_or_404(conn, alarm_id))


@router.post("/alarms/{alarm_id}/resolve", response_model=schemas.Alarm)
def resolve(alarm_id: int, body: schemas.ResolveIn, conn: Db, clk: Now) -> dict:
    row = alarm_sql.resolve(
        conn, alarm_id, clk.now(), body.by, "api", body.outcome.value, body.note, body.nurse_id
    )
    return row or raise_(_conflict_or_404(conn, alarm_id))


@router.get("/quarantine", response_model=list[schemas.QuarantineItem])
def list_quarantine(
    conn: Db, dispenser_id: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict]:
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


def _conflict_or_404(conn: DbConn, alarm_id: int) -> HTTPException:
    if alarm_sql.get_alarm(conn, alarm_id) is None:
        return not_found(f"alarm {alarm_id}")
    return HTTPException(409, f"alarm {alarm_id} is already resolved")
