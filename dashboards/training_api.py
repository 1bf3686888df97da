"""Training mode: ``PUT /api/v1/teams/{id}/training`` and ``POST /api/v1/training/alarms``.

A training team's alarms are practice: marked *training* in the API, the console, every SMS and
call, and webhooks; never forwarded over SCAIP; never paging a real number; left out of every
report. Both routes are for admins and audited. The rules are
:mod:`dosewatch.domain.training`; the use cases :mod:`dosewatch.usecases.training`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from dashboards import schemas
from dashboards import team_schemas as ts
from dashboards.access import Admin
from dashboards.deps import Db, Now, not_found, raise_
from dashboards.fields import Id, Text, errors, invalid
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import teams as team_sql
from dosewatch.domain.protocol import DispenserId
from dosewatch.domain.training_trigger import TriggerKind
from dosewatch.usecases import training

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["training"])


class TrainingFlagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    training: bool = Field(
        description="true: a training team. Its alarms are practice (marked everywhere, never "
        "to a real number or an alarm receiving centre, in no report). Only a team with no "
        "patients and no alarms can change."
    )
    reason: Text | None = Field(default=None, description="why (kept in the audit log)")


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dispenser_id: DispenserId = Field(description="a training team's dispenser")
    kind: TriggerKind = Field(description="the practice alarm's cause")


@router.put(
    "/teams/{team_id}/training", response_model=ts.Team, responses=errors(401, 403, 404, 409)
)
def put_team_training(
    team_id: Id, body: TrainingFlagIn, conn: Db, clk: Now, acc: Admin
) -> dict[str, Any]:
    """Make a team a training team, or a real one again (admins; audited)."""
    by = acc.claimed(None)
    try:
        change = training.set_team_training(conn, team_id, body.training, by, clk.now())
    except training.NotFound:
        raise not_found(f"team {team_id}") from None
    except training.Refused as exc:
        raise HTTPException(409, f"team {team_id}: {exc}") from None
    if change.before != change.after:
        acc.log(
            "update", "team", team_id, training=change.after, before=change.before,
            reason=body.reason,
        )  # fmt: skip
        log.info("team %s: training %s (was %s), by %s", team_id, change.after, change.before, by)
    return team_sql.get_team(conn, team_id) or raise_(not_found(f"team {team_id}"))


@router.post(
    "/training/alarms",
    status_code=201,
    response_model=schemas.Alarm,
    responses=errors(401, 403, 409),
)
def trigger_training_alarm(body: TriggerIn, conn: Db, clk: Now, acc: Admin) -> dict[str, Any]:
    """Open a practice alarm on a training team's dispenser, exactly as the real cause would
    (the same opening, escalation, console and SMS), marked training. 409 on a real team's
    dispenser, or while one of that kind is still unresolved on it (admins; audited)."""
    by = acc.claimed(None)
    try:
        alarm_id = training.trigger(conn, body.dispenser_id, body.kind, clk.now(), by)
    except training.NotFound as exc:
        invalid(("body", "dispenser_id"), str(exc))
    except training.Refused as exc:
        raise HTTPException(409, str(exc)) from None
    acc.log("create", "alarm", alarm_id, training=body.kind.value, dispenser=body.dispenser_id)
    log.info("training alarm %s (%s) on %s by %s", alarm_id, body.kind, body.dispenser_id, by)
    row = alarm_sql.get_alarm(conn, alarm_id)
    assert row is not None  # opened in this request's transaction
    return dict(row)
