"""SQL for quarantined messages: everything the gateway could not accept, with raw bytes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dosewatch.db import DbConn
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
    """Many messages at once, with COPY (a garbage flood is quarantined at full speed)."""
    if not rows:
        return
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY quarantine (received_at, topic, payload, reason, dispenser_id) FROM STDIN"
        ) as copy,
    ):
        for r in rows:
            m = r.message
            copy.write_row(
                (m.received_at, m.topic, m.payload, r.rejection.reason, r.rejection.dispenser_id)
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
