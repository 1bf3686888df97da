"""``PUT /api/v1/patients/{id}/identity-number``: the patient's personnummer or
samordningsnummer, validated with its check digit (:mod:`dosewatch.domain.personnummer`).

Only admins set it, and the change is audited without the number itself (the audit log is read
by managers, who have no need for it). It is shown only in the FHIR Patient resource, to the
roles in :data:`dashboards.fhir_api.IDENTITY_ROLES`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from dashboards.access import Admin
from dashboards.deps import Db, Now
from dashboards.fields import Id, errors, invalid, text
from dosewatch.db import fhir as fhir_sql
from dosewatch.domain import personnummer

router = APIRouter(prefix="/api/v1", tags=["patients"])


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    personal_id: Annotated[str, text(20)] | None = Field(
        description="YYYYMMDD-NNNC or YYMMDD-NNNC; null removes it"
    )


class IdentityOut(BaseModel):
    patient_id: int
    kind: personnummer.IdKind | None
    system: str | None = Field(description="the FHIR identifier system (an OID)")
    personal_id: str | None = Field(description="twelve-digit form, YYYYMMDD-NNNC")


@router.put(
    "/patients/{patient_id}/identity-number",
    response_model=IdentityOut,
    responses=errors(401, 403, 404, 409),
)
def put_identity_number(
    patient_id: Id, body: IdentityIn, conn: Db, acc: Admin, now: Now
) -> IdentityOut:
    acc.check("patient", patient_id)
    identity = None
    if body.personal_id is not None:
        try:
            identity = personnummer.parse(body.personal_id, now.now().date())
        except personnummer.InvalidIdentityNumber as exc:
            invalid(("body", "personal_id"), str(exc))
    if not fhir_sql.set_identity(conn, patient_id, identity):
        raise HTTPException(409, "another patient already has this identity number")
    acc.log("update", "patient", patient_id, identity_number="set" if identity else "removed")
    return IdentityOut(
        patient_id=patient_id,
        kind=identity.kind if identity else None,
        system=identity.system if identity else None,
        personal_id=identity.display if identity else None,
    )
