"""``/api/v1/webhooks``: admins subscribe other systems to alarm events, signed with a secret.

The secret is shown once, in the answer that creates the subscription. Deliveries, with their
state (``pending``, ``sending``, ``sent``, ``failed``) and last answer, are listed per
subscription so that a receiver that gave up can be seen and mended. The body receivers get is
documented in the OpenAPI's ``webhooks`` section (:func:`document`); how to check the signature
is in ``docs/webhooks.md``.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Header, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from dashboards.access import Admin
from dashboards.deps import Db, Now, not_found
from dashboards.fields import Id, errors, text
from dosewatch.db import teams as team_sql
from dosewatch.db import webhooks as webhook_sql
from dosewatch.domain import webhooks

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
EventType = Literal[tuple(sorted(webhooks.ALL_EVENTS))]  # type: ignore[valid-type]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, text(2000), Field(pattern=r"^https?://[^\s]+$")]
    team_id: Id | None = Field(default=None, description="null: every team")
    events: list[EventType] | None = Field(  # type: ignore[valid-type]
        default=None, min_length=1, description="default: every alarm event"
    )


class SubscriptionOut(BaseModel):
    id: int
    team_id: int | None
    url: str
    events: list[str]
    active: bool
    created_at: datetime
    created_by: str


class CreatedSubscription(SubscriptionOut):
    secret: str = Field(description="signs every delivery; shown only now")


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    state: Literal["pending", "sending", "sent", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None


@router.post(
    "/webhooks", status_code=201, response_model=CreatedSubscription,
    responses=errors(401, 403, 404),
)  # fmt: skip
def create_subscription(
    body: SubscriptionIn, conn: Db, acc: Admin, now: Now
) -> CreatedSubscription:
    if body.team_id is not None and team_sql.get_team(conn, body.team_id) is None:
        raise not_found(f"team {body.team_id}")
    secret = "whsec_" + secrets.token_urlsafe(32)
    row = webhook_sql.create_subscription(
        conn, team_id=body.team_id, url=body.url, secret=secret,
        events=sorted(body.events or webhooks.ALL_EVENTS), by=acc.actor, now=now.now(),
    )  # fmt: skip
    acc.log("create", "webhook", row.id, url=row.url, team_id=row.team_id, events=row.events)
    return CreatedSubscription(**row.__dict__, secret=secret)


@router.get("/webhooks", response_model=list[SubscriptionOut], responses=errors(401, 403))
def list_subscriptions(conn: Db, acc: Admin) -> list[SubscriptionOut]:
    return [SubscriptionOut(**r.__dict__) for r in webhook_sql.list_subscriptions(conn)]


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=errors(401, 403, 404))
def stop_subscription(webhook_id: Id, conn: Db, acc: Admin) -> Response:
    if not webhook_sql.deactivate(conn, webhook_id):
        raise not_found(f"webhook {webhook_id}")
    acc.log("deactivate", "webhook", webhook_id)
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut],
    responses=errors(401, 403, 404),
)  # fmt: skip
def list_deliveries(
    webhook_id: Id, conn: Db, acc: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    if not any(s.id == webhook_id for s in webhook_sql.list_subscriptions(conn)):
        raise not_found(f"webhook {webhook_id}")
    return webhook_sql.deliveries(conn, webhook_id, limit)


class AlarmSummary(BaseModel):
    id: int
    kind: str
    priority: str
    state: str
    dispenser_id: str
    patient_id: int = Field(description="read the patient through the API or FHIR if needed")
    slot_due_at: datetime | None
    opened_at: datetime
    training: bool = Field(
        default=False, description="a training team's alarm (training mode): practice, not care"
    )


class AlarmEventBody(BaseModel):
    id: str = Field(description="the idempotency key; also the Dosewatch-Event-Id header")
    type: EventType  # type: ignore[valid-type]
    occurred_at: datetime
    actor: str
    via: str = Field(description="api, console, sms, phone or automatic")
    alarm: AlarmSummary


def document(app: FastAPI) -> None:
    """Describe what receivers get in the OpenAPI document's ``webhooks`` section."""

    @app.webhooks.post("alarm-event")
    def alarm_event(
        body: AlarmEventBody,
        dosewatch_signature: Annotated[str, Header(description="t=<unix>,v1=<hex HMAC-SHA256>")],
        dosewatch_event_id: Annotated[str, Header()],
        dosewatch_event_type: Annotated[str, Header()],
    ) -> None:
        """POSTed to each subscription's URL for every alarm event it asked for. Answer 2xx
        within 10 s; anything else is retried with backoff (a 4xx other than 408/429 is not).
        Check the signature over the raw body as ``docs/webhooks.md`` shows."""
        raise HTTPException(501)  # documentation only: this server never receives it
