"""SQL for quarantined messages: everything the gateway could not accept, with raw bytes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db.events import copy_rows
from dosewatch.domain.ingest import QuarantineRow


def quarantine(
    conn: DbConn,
    *,
    topic: str,
    payload: bytes,
    reason: str,
    received_at: datetime,
    dispenser_id: str | None,
) -> int:
    row = conn.execute(
        "INSERT INTO quarantine (received_at, topic, payload, reason, dispenser_id)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (received_at, topic, payload, reason, dispenser_id),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def copy_quarantine(conn: DbConn, rows: Sequence[QuarantineRow]) -> None:
    """Many messages at once (a garbage flood is quarantined at full speed)."""
    if rows:
        copy_rows(
            conn,
            "COPY quarantine (received_at, topic, payload, reason, dispenser_id) FROM STDIN",
            (
                (
                    r.message.received_at,
                    r.message.topic,
                    r.message.payload,
                    r.rejection.reason,
                    r.rejection.dispenser_id,
                )
                for r in rows
            ),
        )


def list_quarantine(
    conn: DbConn, *, limit: int, dispenser_id: str | None = None
) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT id, received_at, topic, payload, reason, dispenser_id FROM quarantine"
        " WHERE %(d)s::text IS NULL OR dispenser_id = %(d)s"
        " ORDER BY id DESC LIMIT %(limit)s",
        {"d": dispenser_id, "limit": limit},
    ).fetchall()
