"""SQL of the webhooks: subscriptions, the fan-out queue and the delivery outbox (typed rows).

Deliveries follow the notification outbox's pattern: a short transaction claims due rows
(``FOR UPDATE SKIP LOCKED``) under a lease, the HTTP call happens with no lock held, and another
short transaction records the answer. A row whose claimant died is taken again after the lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn
from dosewatch.db.alarms import training_sql
from dosewatch.domain.webhooks import AlarmEvent, Subscription

LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class SubscriptionRow:
    id: int
    team_id: int | None
    url: str
    events: list[str]
    active: bool
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class Delivery:
    id: int
    subscription_id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    attempts: int


_SUB_COLUMNS = "id, team_id, url, events, active, created_at, created_by"


def create_subscription(
    conn: DbConn, *, team_id: int | None, url: str, secret: str, events: list[str], by: str,
    now: datetime,
) -> SubscriptionRow:  # fmt: skip
    row = conn.execute(
        "INSERT INTO webhook_subscriptions (team_id, url, secret, events, created_at, created_by)"
        f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_SUB_COLUMNS}",
        (team_id, url, secret, events, now, by),
    ).fetchone()
    assert row is not None
    return SubscriptionRow(**row)


def list_subscriptions(conn: DbConn) -> list[SubscriptionRow]:
    rows = conn.execute(f"SELECT {_SUB_COLUMNS} FROM webhook_subscriptions ORDER BY id")
    return [SubscriptionRow(**r) for r in rows.fetchall()]


def deactivate(conn: DbConn, subscription_id: int) -> bool:
    cur = conn.execute(
        "UPDATE webhook_subscriptions SET active = false WHERE id = %s", (subscription_id,)
    )
    return cur.rowcount == 1


def take_queued_events(conn: DbConn, limit: int) -> list[AlarmEvent]:
    """Remove up to ``limit`` queued lifecycle events and return them (in this transaction)."""
    rows = conn.execute(
        "WITH q AS (DELETE FROM alarm_event_queue WHERE history_id IN ("
        "   SELECT history_id FROM alarm_event_queue ORDER BY history_id"
        "   LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING history_id)"
        " SELECT h.id AS history_id, h.action, h.at, h.actor, h.via, a.id AS alarm_id, a.kind,"
        " a.priority, a.state, a.dispenser_id, a.patient_id, a.team_id, p.team_id AS patient_team,"
        f" a.slot_due_at, a.opened_at, {training_sql('a')} AS training"
        " FROM q JOIN alarm_history h ON h.id = q.history_id JOIN alarms a ON a.id = h.alarm_id"
        " JOIN patients p ON p.id = a.patient_id ORDER BY h.id",
        (limit,),
    ).fetchall()
    return [
        AlarmEvent(
            history_id=r["history_id"], action=r["action"], at=r["at"], actor=r["actor"],
            via=r["via"], alarm_id=r["alarm_id"], kind=r["kind"], priority=r["priority"],
            state=r["state"], dispenser_id=r["dispenser_id"], patient_id=r["patient_id"],
            teams=frozenset(t for t in (r["team_id"], r["patient_team"]) if t is not None),
            team_id=r["team_id"] if r["team_id"] is not None else r["patient_team"],
            slot_due_at=r["slot_due_at"], opened_at=r["opened_at"], training=r["training"],
        )  # fmt: skip
        for r in rows
    ]


def active_subscriptions(conn: DbConn) -> list[Subscription]:
    rows = conn.execute(
        "SELECT id, team_id, events FROM webhook_subscriptions WHERE active"
    ).fetchall()
    return [Subscription(r["id"], r["team_id"], frozenset(r["events"])) for r in rows]


def enqueue(
    conn: DbConn, items: list[tuple[int, str, str, dict[str, Any]]], now: datetime
) -> int:
    """(subscription, event id, type, payload) rows; a fact queued twice is stored once."""
    if not items:
        return 0
    cur = conn.execute(
        "INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, payload,"
        " created_at, next_attempt_at)"
        " SELECT s, e, t, p, %s, %s FROM unnest(%s::bigint[], %s::text[], %s::text[],"
        " %s::jsonb[]) AS x(s, e, t, p)"
        " ON CONFLICT (subscription_id, event_id) DO NOTHING",
        (now, now, [i[0] for i in items], [i[1] for i in items], [i[2] for i in items],
         [Jsonb(i[3]) for i in items]),
    )  # fmt: skip
    return cur.rowcount


def claim(conn: DbConn, now: datetime, limit: int, lease: timedelta = LEASE) -> list[Delivery]:
    rows = conn.execute(
        "UPDATE webhook_deliveries d SET state = 'sending', claimed_until = %(until)s,"
        " attempts = d.attempts + 1"
        " FROM webhook_subscriptions s"
        " WHERE s.id = d.subscription_id AND d.id IN ("
        "   SELECT id FROM webhook_deliveries WHERE next_attempt_at <= %(now)s"
        "   AND (state = 'pending' OR (state = 'sending' AND claimed_until < %(now)s))"
        "   ORDER BY next_attempt_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
        " RETURNING d.id, d.subscription_id, s.url, s.secret, d.event_id, d.event_type,"
        " d.payload, d.attempts",
        {"now": now, "until": now + lease, "limit": limit},
    ).fetchall()
    return [Delivery(**r) for r in sorted(rows, key=lambda r: r["id"])]


def record_sent(conn: DbConn, delivery_id: int, status: int, now: datetime) -> None:
    conn.execute(
        "UPDATE webhook_deliveries SET state = 'sent', delivered_at = %s, last_status = %s,"
        " last_error = NULL, claimed_until = NULL WHERE id = %s",
        (now, status, delivery_id),
    )


def record_failure(
    conn: DbConn, delivery_id: int, status: int | None, error: str, retry_at: datetime | None
) -> None:
    """Try again at ``retry_at``, or give up (``None``): the row stays, ``failed``, to be shown."""
    conn.execute(
        "UPDATE webhook_deliveries SET state = %s, next_attempt_at = COALESCE(%s, next_attempt_at),"
        " last_status = %s, last_error = %s, claimed_until = NULL WHERE id = %s",
        ("pending" if retry_at else "failed", retry_at, status, error[:500], delivery_id),
    )


def deliveries(conn: DbConn, subscription_id: int, limit: int) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT id, event_id, event_type, state, attempts, created_at, next_attempt_at,"
        " delivered_at, last_status, last_error FROM webhook_deliveries"
        " WHERE subscription_id = %s ORDER BY id DESC LIMIT %s",
        (subscription_id, limit),
    ).fetchall()


def failed_count(conn: DbConn) -> int:
    row = conn.execute("SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'failed'")
    found = row.fetchone()
    return int(found["n"]) if found else 0
