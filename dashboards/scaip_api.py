"""SCAIP forwarding per team: where a team's alarms go (admins), and what was forwarded.

``PUT /api/v1/teams/{id}/scaip`` sets the receiving centre's SIP URI, this installation's
controller id there, and the alarm kinds to forward (of those SCAIP has a code for:
:data:`dosewatch.domain.scaip.FORWARDABLE_KINDS`). ``GET /api/v1/scaip/forwards`` lists each
forward with its state: ``received`` (the centre's SIP answer was 2xx: receipt, not
acknowledgement of the alarm), ``pending``/``sending`` (being retried) or ``failed``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from dashboards.access import Admin, Oversight
from dashboards.deps import Db, Now, not_found
from dashboards.fields import Id, errors, text
from dosewatch.db import scaip as scaip_sql
from dosewatch.db import teams as team_sql
from dosewatch.domain import scaip

router = APIRouter(prefix="/api/v1", tags=["scaip"])
Kind = Literal[tuple(sorted(scaip.FORWARDABLE_KINDS))]  # type: ignore[valid-type]


class ScaipSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    centre_uri: Annotated[str, text(500), Field(pattern=r"^sips?:[^\s]+$")]
    controller_id: Annotated[str, text(64), Field(pattern=r"^[A-Za-z0-9._-]+$")]
    kinds: list[Kind] = Field(min_length=1)  # type: ignore[valid-type]
    active: bool = True


class ScaipSettings(BaseModel):
    team_id: int
    centre_uri: str
    controller_id: str
    kinds: list[str]
    active: bool
    updated_at: datetime
    updated_by: str


class ScaipForward(BaseModel):
    id: int
    alarm_id: int
    team_id: int
    ref: str
    state: Literal["pending", "sending", "received", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    received_at: datetime | None
    last_code: int | None = Field(description="the centre's last SIP status code")
    last_reason: str | None


@router.put("/teams/{team_id}/scaip", response_model=ScaipSettings, responses=errors(401, 403, 404))
def put_scaip(team_id: Id, body: ScaipSettingsIn, conn: Db, acc: Admin, now: Now) -> ScaipSettings:
    if team_sql.get_team(conn, team_id) is None:
        raise not_found(f"team {team_id}")
    row = scaip_sql.put_settings(
        conn, team_id, centre_uri=body.centre_uri, controller_id=body.controller_id,
        kinds=sorted(body.kinds), active=body.active, by=acc.actor, now=now.now(),
    )  # fmt: skip
    acc.log("update", "team", team_id, scaip=body.model_dump())
    return ScaipSettings(**row.__dict__)


@router.get("/teams/{team_id}/scaip", response_model=ScaipSettings, responses=errors(401, 403, 404))
def get_scaip(team_id: Id, conn: Db, acc: Admin) -> ScaipSettings:
    row = scaip_sql.get_settings(conn, team_id)
    if row is None:
        raise not_found(f"SCAIP settings of team {team_id}")
    return ScaipSettings(**row.__dict__)


@router.get("/scaip/forwards", response_model=list[ScaipForward], responses=errors(401, 403))
def list_forwards(
    conn: Db, acc: Oversight, team_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ScaipForward]:  # fmt: skip
    return [ScaipForward(**r.__dict__) for r in scaip_sql.forwards(conn, team_id=team_id,
                                                                   limit=limit)]  # fmt: skip
