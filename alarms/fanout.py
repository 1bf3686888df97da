"""Alarm events out to other systems: one idempotent job that empties the alarm-event queue.

``alarm_event_queue`` is filled in the transaction that recorded each lifecycle fact (a
statement trigger on ``alarm_history``, while anything subscribes), so no event is missed
whatever order transactions commit in. This job takes a batch with ``SKIP LOCKED`` and, in the
same transaction, stores what each receiver is owed: a webhook delivery per interested
subscription, and a SCAIP forward for a newly opened alarm whose team forwards that kind. The
outboxes' unique keys make a repeat harmless.
"""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.db import scaip as scaip_sql
from dosewatch.db import webhooks as webhook_sql
from dosewatch.domain import scaip, webhooks


def fan_out(pool: ConnectionPool, clock: Clock, batch: int = 500) -> int:
    """Turn queued events into deliveries and forwards; returns how many were stored."""
    stored = 0
    while True:
        with pool.connection() as conn, conn.transaction():
            now = clock.now()
            events = webhook_sql.take_queued_events(conn, batch)
            pairs = webhooks.fan_out(events, webhook_sql.active_subscriptions(conn))
            stored += webhook_sql.enqueue(
                conn,
                [(s.id, webhooks.event_id(e), webhooks.event_type(e.action) or "",
                  webhooks.payload(e)) for s, e in pairs],
                now,
            )  # fmt: skip
            centres = scaip_sql.active_settings(conn)
            forwards = []
            for e in events:
                team = centres.get(e.team_id) if e.team_id is not None else None
                if e.action != "opened" or team is None:
                    continue
                if not scaip.forwardable(e.kind, frozenset(team.kinds), e.training):
                    continue
                ref = scaip.reference(e.alarm_id)
                body = scaip.alarm_message(scaip.ScaipAlarm(
                    ref, team.controller_id, e.dispenser_id, e.kind, e.priority))  # fmt: skip
                forwards.append((e.alarm_id, team.team_id, ref, team.centre_uri, body))
            stored += scaip_sql.enqueue(conn, forwards, now)
        if len(events) < batch:
            return stored
