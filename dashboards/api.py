"""The JSON API, ``/api/v1``. Routes are thin: parse, call the SQL layer, shape the answer."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from dashboards import schemas
from dosewatch.clock import Clock
from dosewatch.db import DbConn, registry
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import events as event_sql
from dosewatch.db import quarantine as quarantine_sql
from dosewatch.db import schedules as schedule_sql
from dosewatch.domain.alarms import AlarmState

router = APIRouter(prefix="/api/v1")
MAX_SLOT_RANGE = timedelta(days=62)


def db(request: Request) -> Iterator[DbConn]:
    with request.app.state.pool.connection() as conn, conn.transaction():
        yield conn


def clock(request: Request) -> Clock:
    return request.app.state.clock


Db = Annotated[DbConn, Depends(db)]
Now = Annotated[Clock, Depends(clock)]


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} does not exist")


def _dispenser_or_404(conn: DbConn, dispenser_id: str) -> dict:
    row = registry.get_dispenser(conn, dispenser_id)
    if row is None:
        raise _not_found(f"dispenser {dispenser_id!r}")
    return row


@router.post("/patients", status_code=201, response_model=schemas.Patient)
def create_patient(body: schemas.PatientIn, conn: Db) -> dict:
    return registry.create_patient(conn, **body.model_dump())


@router.get("/patients/{patient_id}", response_model=schemas.Patient)
def get_patient(patient_id: int, conn: Db) -> dict:
    return registry.get_patient(conn, patient_id) or _raise(_not_found(f"patient {patient_id}"))


@router.post("/dispensers", status_code=201, response_model=schemas.Dispenser)
def create_dispenser(body: schemas.DispenserIn, conn: Db) -> dict:
    if registry.get_patient(conn, body.patient_id) is None:
        raise HTTPException(422, f"patient {body.patient_id} does not exist")
    try:
        with conn.transaction():
            return registry.create_dispenser(conn, dispenser_id=body.id, patient_id=body.patient_id)
    except psycopg.errors.UniqueViolation:
        raise HTTPException(409, f"dispenser {body.id!r} already exists") from None


@router.get("/dispensers/{dispenser_id}", response_model=schemas.Dispenser)
def get_dispenser(dispenser_id: str, conn: Db) -> dict:
    return _dispenser_or_404(conn, dispenser_id)


@router.put("/dispensers/{dispenser_id}/schedule", response_model=schemas.Schedule)
def put_schedule(
    dispenser_id: str, body: schemas.ScheduleIn, conn: Db, clk: Now, request: Request
) -> dict:
    """Store a new schedule version and plan its slots at once (a dose due in 2 min is watched)."""
    _dispenser_or_404(conn, dispenser_id)
    now = clk.now()
    row = schedule_sql.save_schedule(
        conn,
        dispenser_id,
        timezone=body.timezone,
        doses=[{"time": d.time.strftime("%H:%M"), "window_min": d.window_min} for d in body.doses],
        valid_from=body.valid_from,
        now=now,
    )
    schedule_sql.replan(conn, dispenser_id, now, now + request.app.state.horizon)
    return row


@router.get("/dispensers/{dispenser_id}/schedule", response_model=schemas.Schedule)
def get_schedule(dispenser_id: str, conn: Db) -> dict:
    _dispenser_or_404(conn, dispenser_id)
    row = schedule_sql.current_schedule(conn, dispenser_id)
    return row or _raise(_not_found(f"a schedule for dispenser {dispenser_id!r}"))


@router.get("/dispensers/{dispenser_id}/slots", response_model=list[schemas.Slot])
def get_slots(
    dispenser_id: str,
    conn: Db,
    clk: Now,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
) -> list[dict]:
    _dispenser_or_404(conn, dispenser_id)
    now = clk.now()
    start, end = from_ or now - timedelta(days=1), to or now + timedelta(days=2)
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise HTTPException(422, f"{name} needs a UTC offset, e.g. 2026-11-23T07:00:00Z")
    if end <= start or end - start > MAX_SLOT_RANGE:
        raise HTTPException(422, "to must be after from, and at most 62 days later")
    return schedule_sql.list_slots(conn, dispenser_id, start, end)


@router.get("/dispensers/{dispenser_id}/events", response_model=list[schemas.DoseEvent])
def get_events(
    dispenser_id: str, conn: Db, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict]:
    _dispenser_or_404(conn, dispenser_id)
    return event_sql.list_events(conn, dispenser_id, limit)


@router.get("/alarms", response_model=list[schemas.Alarm])
def list_alarms(
    conn: Db, state: AlarmState | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[dict]:
    return alarm_sql.list_alarms(conn, state=state.value if state else None, limit=limit)


@router.get("/alarms/{alarm_id}", response_model=schemas.AlarmDetail)
def get_alarm(alarm_id: int, conn: Db) -> dict:
    row = alarm_sql.get_alarm(conn, alarm_id) or _raise(_not_found(f"alarm {alarm_id}"))
    return {**row, "history": alarm_sql.history(conn, alarm_id)}


@router.post("/alarms/{alarm_id}/acknowledge", response_model=schemas.Alarm)
def acknowledge(
    alarm_id: int, conn: Db, clk: Now, body: schemas.AcknowledgeIn | None = None
) -> dict:
    by = body.by if body else "api"
    row = alarm_sql.acknowledge(conn, alarm_id, clk.now(), by, "api")
    return row or _raise(_conflict_or_404(conn, alarm_id))


@router.post("/alarms/{alarm_id}/resolve", response_model=schemas.Alarm)
def resolve(alarm_id: int, body: schemas.ResolveIn, conn: Db, clk: Now) -> dict:
    row = alarm_sql.resolve(
        conn, alarm_id, clk.now(), body.by, "api", body.outcome.value, body.note
    )
    return row or _raise(_conflict_or_404(conn, alarm_id))


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
        return _not_found(f"alarm {alarm_id}")
    return HTTPException(409, f"alarm {alarm_id} is already resolved")


def _raise(exc: HTTPException) -> dict:
    raise exc
