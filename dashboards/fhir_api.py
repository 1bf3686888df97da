"""``/fhir/R4``: the dose record as HL7 FHIR R4, read-only, behind the same sign-in.

The same roles, team scoping (another team's patient is a 404, audited ``denied``) and audit
trail as every patient record: each read opens the patient's record through
:class:`dashboards.access.Access`. What a slot becomes is the domain's rule
(:mod:`dosewatch.domain.fhir`); this module parses the FHIR search parameters and pages.

Search: ``MedicationAdministration?patient=<id>&date=ge<d>&date=lt<d>&_count=<n>&_offset=<n>``.
A date without a time is local midnight in the installation's time zone
(``DOSEWATCH_TIMEZONE``); an instant needs an offset. Prefixes ``ge``, ``gt``, ``le``, ``lt``
and ``eq`` are supported, on the slot's due time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from dashboards.access import Care
from dashboards.deps import Db, Now, not_found
from dashboards.fields import Id, errors, invalid, text
from dosewatch.db import fhir as fhir_sql
from dosewatch.domain import fhir
from dosewatch.domain.protocol import DispenserId

router = APIRouter(prefix="/fhir/R4", tags=["fhir"])
FHIR_JSON = "application/fhir+json"
IDENTITY_ROLES = frozenset({"nurse", "admin"})  # managers read figures, not identity numbers
MAX_COUNT = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))
_FAR = datetime(9999, 1, 1, tzinfo=ZoneInfo("UTC"))
_DATE_PARAM = re.compile(r"^(eq|ge|gt|le|lt)?(.+)$")
_FHIR_DOC = {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}


class _Fhir(JSONResponse):
    media_type = FHIR_JSON


def _resource(description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, **_FHIR_DOC}}


@router.get("/metadata", responses=_resource("CapabilityStatement"))
def metadata(now: Now) -> JSONResponse:
    """What this server serves (read-only): kept in one place with the routes below."""
    return _Fhir(capability_statement(now.now()))


@router.get(
    "/Patient/{patient_id}",
    responses={**_resource("Patient"), **errors(401, 403, 404)},
)
def read_patient(patient_id: Id, conn: Db, acc: Care) -> JSONResponse:
    acc.open("patient", patient_id)
    record = fhir_sql.patient_record(
        conn, patient_id, with_identity=acc.principal.role in IDENTITY_ROLES
    )
    if record is None:
        raise not_found(f"patient {patient_id}")
    return _Fhir(fhir.patient(record))


@router.get(
    "/Device/{dispenser_id}",
    responses={**_resource("Device"), **errors(401, 403, 404)},
)
def read_device(dispenser_id: DispenserId, conn: Db, acc: Care) -> JSONResponse:
    acc.open("dispenser", dispenser_id)
    record = fhir_sql.device_record(conn, dispenser_id)
    if record is None:
        raise not_found(f"dispenser {dispenser_id!r}")
    return _Fhir(fhir.device(record))


@router.get(
    "/MedicationAdministration",
    responses={**_resource("Bundle (searchset)"), **errors(401, 403, 404)},
)
def search_administrations(
    request: Request,
    conn: Db,
    acc: Care,
    patient: Annotated[str, text(80), Query(description="Patient id, or Patient/<id>")],
    date_: Annotated[
        list[Annotated[str, text(40)]] | None,
        Query(alias="date", description="ge2026-11-01, lt2026-12-01T00:00:00+01:00, …"),
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)] = 100,
    offset: Annotated[int, Query(alias="_offset", ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    patient_id = _patient_id(patient)
    acc.open("patient", patient_id)
    zone = ZoneInfo(request.app.state.default_timezone)
    start, end = _date_range(date_ or [], zone)
    total = fhir_sql.count_decided_slots(conn, patient_id, start, end)
    slots = fhir_sql.decided_slots(conn, patient_id, start, end, limit=count, offset=offset)
    resources = [r for r in map(fhir.medication_administration, slots) if r is not None]
    base = str(request.url.remove_query_params(["_offset"]))
    nxt = offset + count
    next_url = f"{base}&{urlencode({'_offset': nxt})}" if nxt < total else None
    return _Fhir(
        fhir.searchset(resources, total=total, self_url=str(request.url), next_url=next_url)
    )


def _patient_id(value: str) -> int:
    raw = value.removeprefix("Patient/")
    if not raw.isdigit() or not 1 <= int(raw) < 2**63:
        invalid(("query", "patient"), "expected a patient id or Patient/<id>")
    return int(raw)


def _date_range(params: list[str], zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Intersect every ``date`` parameter into one half-open interval of due times."""
    start, end = _EPOCH, _FAR
    for param in params:
        match = _DATE_PARAM.match(param)
        assert match is not None  # the pattern matches any non-empty text
        prefix, value = match.group(1) or "eq", match.group(2)
        lo, hi = _instant_or_day(value, zone)
        if prefix in ("ge", "eq"):
            start = max(start, lo)
        if prefix == "gt":
            start = max(start, hi)
        if prefix in ("lt",):
            end = min(end, lo)
        if prefix in ("le", "eq"):
            end = min(end, hi)
    return start, max(start, end)


def _instant_or_day(value: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A day is ``[local midnight, next local midnight)``; an instant is a point."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            lo = datetime.combine(day, time(0), zone)
            return lo, datetime.combine(day + timedelta(days=1), time(0), zone)
        at = datetime.fromisoformat(value)
        if at.tzinfo is None:
            invalid(("query", "date"), f"{value!r} needs an offset (e.g. +01:00 or Z)")
        return at, at + timedelta(microseconds=1)
    except (ValueError, OverflowError):  # not a date, or at the very end of the calendar
        invalid(("query", "date"), f"{value!r} is neither YYYY-MM-DD nor an instant")


def capability_statement(now: datetime) -> dict[str, Any]:
    read = [{"code": "read"}]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.date().isoformat(),
        "kind": "instance",
        "software": {"name": "dosewatch"},
        "fhirVersion": fhir.FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "security": {"description": "session cookie or Bearer API token; team-scoped"},
                "resource": [
                    {"type": "Patient", "interaction": read},
                    {"type": "Device", "interaction": read},
                    {
                        "type": "MedicationAdministration",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "date", "type": "date"},
                            {"name": "_count", "type": "number"},
                            {"name": "_offset", "type": "number"},
                        ],
                    },
                ],
            }
        ],
    }
