"""What a team's SMS and calls say about patients: ``/api/v1/teams/{id}/notification-privacy``.

Two levels (:mod:`dosewatch.domain.disclosure`): ``minimal``, every team's default (initials,
a short reference, the district), and ``full`` (the full name and the address too). Reading is
for the team's nurses, managers and admins; changing it is for managers and admins, and each
change is audited in the same transaction (``update`` of ``notification_privacy``: who, when,
from where, the level before and after, and the reason given). Setting the level the team
already has changes nothing and audits nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from dashboards.access import Care, Oversight
from dashboards.deps import Db, Now, not_found
from dashboards.fields import Id, Text, errors
from dosewatch.db import message_facts
from dosewatch.domain.disclosure import Detail

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["teams and rosters"])


class NotificationPrivacy(BaseModel):
    team_id: int
    detail: Detail = Field(
        description="minimal: alarm kind, dose time, the patient's initials and reference "
        "(#id), district, acknowledgement code and a console link; full: also the full name "
        "and address. The patient's phone is never sent."
    )
    changed_at: datetime | None = Field(description="last change; null: never changed")
    changed_by: str | None


class NotificationPrivacyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detail: Detail
    reason: Text | None = Field(default=None, description="why (kept in the audit log)")


def _out(row: message_facts.TeamDetail) -> NotificationPrivacy:
    return NotificationPrivacy(
        team_id=row.team_id,
        detail=row.detail,
        changed_at=row.changed_at,
        changed_by=row.changed_by,
    )


@router.get(
    "/teams/{team_id}/notification-privacy",
    response_model=NotificationPrivacy,
    responses=errors(401, 403, 404),
)
def get_notification_privacy(team_id: Id, conn: Db, acc: Care) -> NotificationPrivacy:
    acc.check("team", team_id)
    row = message_facts.team_detail(conn, team_id)
    if row is None:
        raise not_found(f"team {team_id}")
    return _out(row)


@router.put(
    "/teams/{team_id}/notification-privacy",
    response_model=NotificationPrivacy,
    responses=errors(401, 403, 404),
)
def put_notification_privacy(
    team_id: Id, body: NotificationPrivacyIn, conn: Db, clk: Now, acc: Oversight
) -> NotificationPrivacy:
    acc.check("team", team_id)
    by = acc.claimed(None)
    changed = message_facts.set_team_detail(conn, team_id, body.detail, by, clk.now())
    if changed is None:
        raise not_found(f"team {team_id}")
    row, before = changed
    if before is not body.detail:
        acc.log(
            "update",
            "notification_privacy",
            team_id,
            detail=body.detail.value,
            before=before.value,
            reason=body.reason,
        )
        log.info(
            "team %s: notifications now carry %s patient details (was %s), set by %s",
            team_id,
            body.detail.value,
            before.value,
            by,
        )
    return _out(row)
