"""Live alarm push: ``GET /api/v1/alarms/stream``, Server-Sent Events fed by PostgreSQL.

Triggers on ``alarms`` (migrations 0007, 0024) call ``pg_notify('dosewatch_alarms', …)`` for
new alarms (a hundred to a notice) and every change a console shows; each is unpacked into one
message per alarm by :func:`dosewatch.db.notices.alarm_notices`. Each web process holds one
``LISTEN`` connection (started with the first console, reconnecting with backoff) and fans each
alarm out to its open streams through per-client asyncio queues, so an alarm opened by any
process reaches every open console as soon as its transaction commits. Each client sees only its
team's alarms; the console then fetches the alarm itself through the scoped API. A stream ends
after ``MAX_STREAM_S`` (the browser reconnects at once and reloads its list), so a server
shutdown never waits on it long.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse

from dashboards.access import CurrentPrincipal, team_scope
from dosewatch.db.notices import CHANNEL, alarm_notices

log = logging.getLogger(__name__)
HEARTBEAT_S = 15.0
MAX_STREAM_S = 300.0
QUEUE_SIZE = 10_000


class Hub:
    """One LISTEN connection per process, fanned out to any number of subscriber queues."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._queues: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(q)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen(), name="dosewatch-alarm-listener")
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._queues.discard(q)

    def _publish(self, message: dict[str, Any] | None) -> None:
        for q in list(self._queues):
            try:
                q.put_nowait(message)
            except asyncio.QueueFull:  # a stuck client: make it reconnect and reload
                self._queues.discard(q)
                with contextlib.suppress(asyncio.QueueFull):
                    q.get_nowait()
                    q.put_nowait(None)

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self._publish({"type": "reload"})  # anything missed while reconnecting
                    delay = 0.5
                    async for notice in conn.notifies():
                        try:
                            alarms = alarm_notices(notice.payload)
                        except ValueError:
                            log.warning("alarm listener: ignored %.200s", notice.payload)
                            continue
                        for alarm in alarms:
                            self._publish({"type": "alarm", **alarm})
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:  # the database went away: listen again
                self.listening.clear()
                log.warning("alarm listener: %s; reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def close(self) -> None:
        self._publish(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def hub_of(app: FastAPI) -> Hub:
    hub: Hub | None = getattr(app.state, "alarm_hub", None)
    if hub is None:
        hub = Hub(app.state.pool.conninfo)
        app.state.alarm_hub = hub
    return hub


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    hub = getattr(app.state, "alarm_hub", None)
    if hub is not None:
        await hub.close()


router = APIRouter(prefix="/api/v1", lifespan=_lifespan)


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _events(request: Request, hub: Hub, team: int | None) -> AsyncIterator[str]:
    q = hub.subscribe()
    try:
        yield "retry: 1000\n\n"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.listening.wait(), timeout=5)
        yield _sse("hello", {"listening": hub.listening.is_set()})
        ends = time.monotonic() + MAX_STREAM_S
        while time.monotonic() < ends:
            try:
                msg = await asyncio.wait_for(q.get(), timeout=HEARTBEAT_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield ": keep-alive\n\n"
                continue
            if msg is None:
                return
            if msg["type"] == "reload":
                yield _sse("reload", {})
            elif team is None or msg.get("team_id") == team:
                yield _sse("alarm", {k: v for k, v in msg.items() if k != "type"})
    finally:
        hub.unsubscribe(q)


@router.get("/alarms/stream", include_in_schema=True, tags=["console"])
async def alarm_stream(request: Request, principal: CurrentPrincipal) -> StreamingResponse:
    """Server-Sent Events: ``alarm`` {id, team_id, state, priority, op, at} for every new or
    changed alarm of the caller's team; ``reload`` when the server may have missed some."""
    hub = hub_of(request.app)
    return StreamingResponse(
        _events(request, hub, team_scope(principal)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
