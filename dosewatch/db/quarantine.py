"""SQL for quarantined messages: everything the gateway could not accept, with raw bytes.

One row per distinct bad message (same topic, payload and reason; the key is the generated
``digest`` column, migration ``0023_quarantine_repeats.sql``), counting its receipts: the gateway
acknowledges only after commit, so MQTT QoS 1 redelivers a message after a reconnect or a
restart, and that must not turn one bad message into several records. ``received_at`` is the
first receipt, ``last_received_at`` the latest, ``repeats`` how many in all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypedDict

from dosewatch.db import DbConn, packed
from dosewatch.domain.ingest import QuarantineRow

# Every write goes through this one statement, one message or a whole flood: the batch is sent
# as packed binary arrays (as fast in as COPY, and no staging table to create per connection),
# aggregated per message first (ON CONFLICT cannot touch one row twice in a statement, and a
# flood of identical garbage must collapse within its batch too), and upserted in digest order,
# so that two gateways upserting the same messages take the row locks in one order.
_UPSERT = """
INSERT INTO quarantine AS q
    (received_at, last_received_at, repeats, topic, payload, reason, dispenser_id)
SELECT min(m.received_at), max(m.received_at), count(*), m.topic, m.payload, m.reason,
       min(m.dispenser_id)  -- one value: it is read from the topic or the payload
FROM (SELECT quarantine_digest(u.topic, u.reason, u.payload) AS digest, u.*
      FROM unnest(%b::timestamptz[], %b::text[], %b::bytea[], %b::text[], %b::text[])
          AS u (received_at, topic, payload, reason, dispenser_id)) AS m
-- Grouped on the digest first: one sort serves both the grouping and the lock order.
GROUP BY m.digest, m.topic, m.reason, m.payload
ORDER BY m.digest
ON CONFLICT (digest) DO UPDATE SET
    repeats = q.repeats + excluded.repeats,
    received_at = least(q.received_at, excluded.received_at),
    last_received_at = greatest(q.last_received_at, excluded.last_received_at),
    dispenser_id = coalesce(q.dispenser_id, excluded.dispenser_id)
RETURNING id
"""


class QuarantineListRow(TypedDict):
    id: int
    received_at: datetime  # the first receipt
    last_received_at: datetime
    repeats: int  # receipts in all, redeliveries included
    topic: str
    payload: bytes
    reason: str
    dispenser_id: str | None


def quarantine(
    conn: DbConn,
    *,
    topic: str,
    payload: bytes,
    reason: str,
    received_at: datetime,
    dispenser_id: str | None,
) -> int:
    """Quarantine one message; return its record's id (a repeat's is the first receipt's)."""
    row = conn.execute(
        _UPSERT, _arrays([received_at], [topic], [payload], [reason], [dispenser_id])
    ).fetchone()
    assert row is not None
    return int(row["id"])


def upsert_quarantine(conn: DbConn, rows: Sequence[QuarantineRow]) -> None:
    """Many messages at once (a garbage flood is quarantined at full speed)."""
    if rows:
        conn.execute(
            _UPSERT,
            _arrays(
                [r.message.received_at for r in rows],
                [r.message.topic for r in rows],
                [r.message.payload for r in rows],
                [r.rejection.reason for r in rows],
                [r.rejection.dispenser_id for r in rows],
            ),
        )


def _arrays(
    received_at: list[datetime],
    topic: list[str],
    payload: list[bytes],
    reason: list[str],
    dispenser_id: list[str | None],
) -> tuple[packed.Packed, ...]:
    return (
        packed.array("timestamptz", received_at),
        packed.array("text", topic),
        packed.array("bytea", payload),
        packed.array("text", reason),
        packed.array("text", dispenser_id),
    )


def list_quarantine(
    conn: DbConn, *, limit: int, dispenser_id: str | None = None
) -> list[QuarantineListRow]:
    rows: list[QuarantineListRow] = conn.execute(
        "SELECT id, received_at, last_received_at, repeats, topic, payload, reason, dispenser_id"
        " FROM quarantine WHERE %(d)s::text IS NULL OR dispenser_id = %(d)s"
        " ORDER BY id DESC LIMIT %(limit)s",
        {"d": dispenser_id, "limit": limit},
    ).fetchall()
    return rows
