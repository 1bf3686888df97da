"""The self-watch, over HTTP: a health endpoint and Prometheus metrics.

``GET /api/v1/health`` answers 503 when the alarm machinery has stopped keeping up, or a
gateway has yielded its broker session to another client with the same client id (the rules are
in :mod:`dosewatch.domain.health`), and says whether SMS and calls are on or the service is
console-only. ``GET /metrics`` exposes the same facts for Prometheus. Both read the database at
request time (job runs, overdue slots, the gateways' session rows), so any web process reports
the state of the whole deployment, whichever process runs the gateway.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from pydantic import BaseModel, Field

from dosewatch.db import gateway_sessions
from dosewatch.db import health as health_sql
from dosewatch.domain.health import WATCHED, in_conflict, problems, running, session_problems

router = APIRouter()


def _facts(request: Request) -> dict[str, Any]:
    now = request.app.state.clock.now()
    with request.app.state.pool.connection() as conn:
        runs = health_sql.last_runs(conn)
        oldest = health_sql.oldest_overdue_slot(conn, now)
        sessions = gateway_sessions.all_sessions(conn)
    interval = timedelta(seconds=request.app.state.sweep_interval_s)
    return {
        "now": now,
        "runs": runs,
        "oldest": oldest,
        "sessions": sessions,
        "problems": problems(runs, oldest, now, interval) + session_problems(sessions, now),
        "notifications": request.app.state.notifications,
    }


class GatewayOut(BaseModel):
    client_id: str
    state: Literal["connecting", "connected", "yielded", "stopped", "silent"] = Field(
        description="silent: no status from that gateway for 2 minutes (it has stopped)"
    )
    session_conflict: bool = Field(
        description="yielded now, or its session was taken over in the last 15 minutes"
    )
    broker: str
    host: str
    pid: int
    since: datetime
    takeovers: int
    last_takeover_at: datetime | None
    retry_at: datetime | None = Field(description="yielded: when it next tries the session")
    seen_at: datetime


class HealthOut(BaseModel):
    status: Literal["ok", "failing"]
    problems: list[str]
    notifications: str
    console_only: bool
    jobs: dict[str, datetime] = Field(description="when each periodic job last succeeded")
    oldest_overdue_slot: datetime | None
    session_conflict: bool = Field(
        description="another client uses a gateway's client id (DOSEWATCH_MQTT_CLIENT_ID)"
    )
    gateways: list[GatewayOut]


@router.get(
    "/api/v1/health",
    tags=["health"],
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "Failing: see problems"}},
)
def health(request: Request) -> JSONResponse:
    facts = _facts(request)
    now = facts["now"]
    body = HealthOut(
        status="failing" if facts["problems"] else "ok",
        problems=facts["problems"],
        notifications=facts["notifications"],
        console_only=facts["notifications"] == "console-only",
        jobs=dict(sorted(facts["runs"].items())),
        oldest_overdue_slot=facts["oldest"],
        session_conflict=any(in_conflict(s, now) for s in facts["sessions"]),
        gateways=[_gateway(s, now) for s in facts["sessions"]],
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if facts["problems"] else 200)


def _gateway(s: gateway_sessions.GatewaySession, now: datetime) -> GatewayOut:
    return GatewayOut(
        client_id=s.client_id,
        state=s.state if running(s, now) or s.state == "stopped" else "silent",
        session_conflict=in_conflict(s, now),
        broker=s.broker,
        host=s.host,
        pid=s.pid,
        since=s.since,
        takeovers=s.takeovers,
        last_takeover_at=s.last_takeover_at,
        retry_at=s.retry_at,
        seen_at=s.seen_at,
    )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    facts = _facts(request)
    registry = CollectorRegistry()
    healthy = Gauge(
        "dosewatch_alarm_pipeline_healthy", "1 when the self-watch passes", [], registry=registry
    )
    healthy.set(0 if facts["problems"] else 1)
    last = Gauge(
        "dosewatch_job_last_success_timestamp_seconds",
        "when each periodic job last succeeded",
        ["job"],
        registry=registry,
    )
    for job in WATCHED:
        at = facts["runs"].get(job)
        last.labels(job).set(at.timestamp() if at else 0)
    backlog = Gauge(
        "dosewatch_oldest_overdue_slot_seconds",
        "age of the oldest dose slot past its window and not yet processed (0 = none)",
        registry=registry,
    )
    oldest = facts["oldest"]
    backlog.set((facts["now"] - oldest).total_seconds() if oldest else 0)
    console_only = Gauge(
        "dosewatch_console_only", "1 when SMS and calls are off (no Twilio)", registry=registry
    )
    console_only.set(1 if facts["notifications"] == "console-only" else 0)
    conflict = Gauge(
        "dosewatch_gateway_session_conflict",
        "1 while another client with this gateway's client id holds or recently took its session",
        ["client_id"],
        registry=registry,
    )
    for s in facts["sessions"]:
        if running(s, facts["now"]):
            conflict.labels(s.client_id).set(1 if in_conflict(s, facts["now"]) else 0)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
