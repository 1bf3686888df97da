"""SQL for dose events (with their idempotency ledger) and dispenser status history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn
from dosewatch.db.presence import json_rows
from dosewatch.domain.protocol import Event, Status, to_jsonable


def claim_event_id(conn: DbConn, event: Event, received_at: datetime) -> bool:
    """True the first time this (dispenser, event_id) is seen; False for a duplicate."""
    cur = conn.execute(
        "INSERT INTO dose_event_keys (dispenser_id, event_id, received_at) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (event.dispenser_id, event.event_id, received_at),
    )
    return cur.rowcount == 1


def insert_event(
    conn: DbConn, event: Event, received_at: datetime, slot_id: int | None, match: str
) -> None:
    conn.execute(
        "INSERT INTO dose_events (dispenser_id, event_id, seq, type, occurred_at, received_at,"
        " dose_due_at, doses_left, slot_id, match, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        event_row(event, received_at, slot_id, match),
    )


def claim_event_ids(conn: DbConn, keys: list[tuple[str, str, datetime]]) -> set[tuple[str, str]]:
    """Set-based :func:`claim_event_id`: the (dispenser, event_id) pairs seen for the first time.

    ``keys`` must not repeat a pair (the caller drops in-batch repeats first).
    """
    if not keys:
        return set()
    rows = conn.execute(
        "INSERT INTO dose_event_keys (dispenser_id, event_id, received_at)"
        " SELECT d, e, r FROM jsonb_to_recordset(%s) AS u(d text, e text, r timestamptz)"
        " ON CONFLICT DO NOTHING RETURNING dispenser_id, event_id",
        (json_rows([{"d": d, "e": e, "r": r} for d, e, r in keys]),),
    ).fetchall()
    return {(r["dispenser_id"], r["event_id"]) for r in rows}


def copy_events(conn: DbConn, rows: list[tuple[Event, datetime, int | None, str]]) -> None:
    """Set-based :func:`insert_event`: (event, received_at, slot_id, match) with COPY."""
    if not rows:
        return
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY dose_events (dispenser_id, event_id, seq, type, occurred_at, received_at,"
            " dose_due_at, doses_left, slot_id, match, payload) FROM STDIN"
        ) as copy,
    ):
        for event, received_at, slot_id, match in rows:
            copy.write_row(event_row(event, received_at, slot_id, match))


def list_events(conn: DbConn, dispenser_id: str, limit: int) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT event_id, seq, type, occurred_at, received_at, dose_due_at, doses_left,"
        " slot_id, match, payload FROM dose_events WHERE dispenser_id = %s"
        " ORDER BY occurred_at DESC, seq DESC LIMIT %s",
        (dispenser_id, limit),
    ).fetchall()


def insert_status(conn: DbConn, status: Status, received_at: datetime) -> None:
    conn.execute(
        "INSERT INTO dispenser_status (dispenser_id, at, received_at, battery_pct, on_mains,"
        " doses_left, temperature_c, firmware, rssi_dbm, schedule_version, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            *status_row(status, received_at),
            Jsonb(to_jsonable(status)),
        ),
    )


def event_row(
    event: Event, received_at: datetime, slot_id: int | None, match: str
) -> tuple[Any, ...]:
    """A ``dose_events`` row in column order (for INSERT and COPY alike)."""
    return (
        event.dispenser_id,
        event.event_id,
        event.seq,
        event.type.value,
        event.occurred_at,
        received_at,
        event.dose_due_at,
        event.doses_left,
        slot_id,
        match,
        Jsonb(to_jsonable(event)),
    )


def status_row(status: Status, received_at: datetime) -> tuple[Any, ...]:
    """The typed columns of a status (history and latest-state rows share them)."""
    return (
        status.dispenser_id,
        status.at,
        received_at,
        status.battery_pct,
        status.on_mains,
        status.doses_left,
        status.temperature_c,
        status.firmware,
        status.rssi_dbm,
        status.schedule_version,
    )
