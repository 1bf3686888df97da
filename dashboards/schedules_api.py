"""Schedules, slots, previews and absences: ``/api/v1/dispensers/{id}/…`` and ``/absences``."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request

from dashboards import schemas
from dashboards.access import Admin, AnyRole
from dashboards.deps import Db, Now, not_found, raise_
from dashboards.fields import DispenserPath, Id, InstantOrDate, errors, hhmm, invalid
from dosewatch.db import DbConn
from dosewatch.db import absences as absence_sql
from dosewatch.db import schedules as schedule_sql
from dosewatch.domain.planning import Planned
from dosewatch.usecases.schedules import change_schedule

router = APIRouter(prefix="/api/v1")
MAX_RANGE = timedelta(days=62)
PREVIEW = timedelta(days=7)
# A client's "now" may trail the server's by a little; further in the past is a mistake.
EFFECTIVE_SLACK = timedelta(minutes=1)


FROM_DOC = "an instant with a UTC offset, or a date: local midnight in the schedule's zone"
From = Annotated[InstantOrDate | None, Query(alias="from", description=FROM_DOC)]
To = Annotated[InstantOrDate | None, Query(description=FROM_DOC + " (exclusive)")]


def _zones(conn: DbConn, dispenser_id: str, default: str) -> tuple[ZoneInfo, dict[int, ZoneInfo]]:
    """The zone a date means (the current schedule's, else the default) and each version's."""
    versions = schedule_sql.history(conn, dispenser_id)
    by_version = {v["version"]: ZoneInfo(v["timezone"]) for v in versions}
    current = schedule_sql.current_schedule(conn, dispenser_id)
    return ZoneInfo(current["timezone"] if current else default), by_version


def _instant(value: datetime | date, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value
    # fold=0: a midnight that falls in a gap moves forward, like any other local time.
    return datetime.combine(value, time(0), tzinfo=zone)


def _range(
    now: datetime, start: datetime | date | None, end: datetime | date | None, zone: ZoneInfo
) -> tuple[datetime, datetime]:
    lo = _instant(start, zone) if start is not None else now - timedelta(days=1)
    hi = _instant(end, zone) if end is not None else now + timedelta(days=2)
    if hi <= lo or hi - lo > MAX_RANGE:
        invalid(("query", "to"), "to must be after from, and at most 62 days later")
    return lo, hi


def _presented(due_at: datetime, zone: ZoneInfo | None) -> str | None:
    """The wall-clock time the dispenser presents the dose at (its due instant, in the
    schedule's zone): differs from the schedule's time only inside a spring-forward gap."""
    return hhmm(due_at.astimezone(zone)) if zone is not None else None


def _planned_json(planned: list[Planned], zones: dict[int, ZoneInfo]) -> list[dict[str, Any]]:
    return [
        {
            "due_at": p.slot.due_at,
            "window_end": p.slot.window_end,
            "state": p.state,
            "label": p.slot.label,
            "time_critical": p.slot.time_critical,
            "local_date": p.slot.local_date,
            "local_time": _presented(p.slot.due_at, zones.get(p.version)),
            "scheduled_time": hhmm(p.slot.local_time),
            "schedule_version": p.version,
            "absence_id": p.absence_id,
            "dst_change_day": p.slot.dst_change_day,
        }
        for p in planned
    ]


@router.put(
    "/dispensers/{dispenser_id}/schedule", response_model=schemas.SchedulePut, responses=errors(404)
)
def put_schedule(
    dispenser_id: DispenserPath,
    body: schemas.ScheduleIn,
    conn: Db,
    clk: Now,
    request: Request,
    acc: Admin,
) -> dict[str, Any]:
    """Store a new version, effective now or from ``effective_from``, and re-plan at once.

    Slots due before the change keep their state; later ones are planned from the new version
    (a dose due in two minutes is watched). The answer previews the next 7 days.
    """
    acc.check("dispenser", dispenser_id)
    now = clk.now()
    effective = body.effective_from or now
    if effective < now - EFFECTIVE_SLACK:
        invalid(
            ("body", "effective_from"),
            "effective_from is in the past; a change takes effect now or later",
        )
    row = change_schedule(
        conn,
        dispenser_id,
        timezone=body.timezone or request.app.state.default_timezone,
        doses=body.doses_json(),
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        effective_from=effective,
        created_by=acc.claimed(body.changed_by),
        now=now,
        horizon=request.app.state.horizon,
    )
    acc.log("create", "schedule", dispenser_id, version=row["version"])
    start = max(now, row["effective_from"])
    preview = schedule_sql.preview(conn, dispenser_id, start, start + PREVIEW)
    _, zones = _zones(conn, dispenser_id, request.app.state.default_timezone)
    return {**row, "preview": _planned_json(preview, zones)}


@router.get(
    "/dispensers/{dispenser_id}/schedule", response_model=schemas.Schedule, responses=errors(404)
)
def get_schedule(dispenser_id: DispenserPath, conn: Db, acc: AnyRole) -> dict[str, Any]:
    acc.check("dispenser", dispenser_id)
    row = schedule_sql.current_schedule(conn, dispenser_id)
    return row or raise_(not_found(f"a schedule for dispenser {dispenser_id!r}"))


@router.get(
    "/dispensers/{dispenser_id}/schedule/history",
    response_model=list[schemas.Schedule],
    responses=errors(404),
)
def schedule_history(dispenser_id: DispenserPath, conn: Db, acc: AnyRole) -> list[dict[str, Any]]:
    acc.check("dispenser", dispenser_id)
    return schedule_sql.history(conn, dispenser_id)


@router.get(
    "/dispensers/{dispenser_id}/schedule/preview",
    response_model=list[schemas.PlannedSlot],
    responses=errors(404),
)
def schedule_preview(
    dispenser_id: DispenserPath,
    conn: Db,
    clk: Now,
    request: Request,
    acc: AnyRole,
    from_: From = None,
    to: To = None,
) -> list[dict[str, Any]]:
    """Slots the schedule versions and absences plan for any period (≤ 62 days); stores nothing.
    ``from=2027-03-27`` means local midnight of that day in the schedule's zone."""
    acc.check("dispenser", dispenser_id)
    zone, zones = _zones(conn, dispenser_id, request.app.state.default_timezone)
    start, end = _range(clk.now(), from_, to, zone)
    return _planned_json(schedule_sql.preview(conn, dispenser_id, start, end), zones)


@router.get(
    "/dispensers/{dispenser_id}/slots", response_model=list[schemas.Slot], responses=errors(404)
)
def get_slots(
    dispenser_id: DispenserPath,
    conn: Db,
    clk: Now,
    request: Request,
    acc: AnyRole,
    from_: From = None,
    to: To = None,
) -> list[dict[str, Any]]:
    """The planned slots and their states; dates mean local midnight, as for the preview."""
    acc.check("dispenser", dispenser_id)
    zone, zones = _zones(conn, dispenser_id, request.app.state.default_timezone)
    start, end = _range(clk.now(), from_, to, zone)
    return [
        {
            **row,
            "local_time": _presented(row["due_at"], zones.get(row["schedule_version"])),
            "scheduled_time": hhmm(row["local_time"]) if row["local_time"] else None,
        }
        for row in schedule_sql.list_slots(conn, dispenser_id, start, end)
    ]


@router.post(
    "/dispensers/{dispenser_id}/absences",
    status_code=201,
    response_model=schemas.Absence,
    responses=errors(404),
)
def create_absence(
    dispenser_id: DispenserPath,
    body: schemas.AbsenceIn,
    conn: Db,
    clk: Now,
    request: Request,
    acc: Admin,
) -> dict[str, Any]:
    """Pause a dispenser: its slots in the period become ``suspended`` (no alarm)."""
    acc.check("dispenser", dispenser_id)
    now = clk.now()
    if body.ends_at <= now:
        invalid(("body", "ends_at"), "the absence is already over (ends_at is in the past)")
    row = absence_sql.create(
        conn,
        dispenser_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        reason=body.reason,
        by=acc.claimed(body.by),
        now=now,
    )
    acc.log("create", "absence", row["id"], dispenser_id=dispenser_id)
    _suspend_or_replan(conn, dispenser_id, now, request, since=body.starts_at)
    return row


@router.post(
    "/absences/{absence_id}/end", response_model=schemas.Absence, responses=errors(404, 409)
)
def end_absence(
    absence_id: Id,
    conn: Db,
    clk: Now,
    request: Request,
    acc: Admin,
    body: schemas.AbsenceEnd | None = None,
) -> dict[str, Any]:
    """End a pause early; the rest of its period is planned as usual again."""
    acc.check("absence", absence_id)
    now = clk.now()
    by = acc.claimed(body.by if body else None)
    row = absence_sql.end_early(conn, absence_id, by=by, now=now)
    if row is None:
        existing = absence_sql.get(conn, absence_id)
        if existing is None:
            raise not_found(f"absence {absence_id}")
        raise HTTPException(409, f"absence {absence_id} has already ended")
    _suspend_or_replan(conn, row["dispenser_id"], now, request, since=now)
    acc.log("update", "absence", absence_id, ended_early=True)
    return row


@router.get(
    "/dispensers/{dispenser_id}/absences",
    response_model=list[schemas.Absence],
    responses=errors(404),
)
def list_absences(dispenser_id: DispenserPath, conn: Db, acc: AnyRole) -> list[dict[str, Any]]:
    acc.check("dispenser", dispenser_id)
    return absence_sql.list_for(conn, dispenser_id)


def _suspend_or_replan(
    conn: DbConn, dispenser_id: str, now: datetime, request: Request, since: datetime
) -> None:
    # A slot already due but still open inside a new absence is suspended too: re-plan from
    # the longest window back, which leaves closed slots alone (only pending ones are touched).
    schedule_sql.suspend_open_slots(conn, dispenser_id, now)
    schedule_sql.replan(conn, dispenser_id, now, now + request.app.state.horizon, since=since)
