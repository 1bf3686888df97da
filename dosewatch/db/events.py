"""SQL for dose events (with their idempotency ledger and the slots they match) and dispenser
status history: the steps :mod:`dosewatch.db.ingest` sequences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from dosewatch.db import DbConn, packed
from dosewatch.domain.ingest import EventRow, SlotSnapshot, SlotWrite, StatusRow
from dosewatch.domain.protocol import Event, Status
from dosewatch.domain.slots import SlotState


def claim_event_ids(conn: DbConn, keys: list[tuple[str, str, datetime]]) -> set[tuple[str, str]]:
    """Claim (dispenser, event_id, received_at) keys in the idempotency ledger; return the pairs
    seen for the first time (the others are duplicates: a redelivery or a device repeat).

    ``keys`` must not repeat a pair (the caller drops in-batch repeats first).
    """
    if not keys:
        return set()
    # One key per message: packed binary arrays, not a JSON document (no dict, no isoformat
    # and no JSON parse per key).
    rows = conn.execute(
        "INSERT INTO dose_event_keys (dispenser_id, event_id, received_at)"
        " SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[])"
        " ON CONFLICT DO NOTHING RETURNING dispenser_id, event_id",
        (
            packed.array("text", [k[0] for k in keys]),
            packed.array("text", [k[1] for k in keys]),
            packed.array("timestamptz", [k[2] for k in keys]),
        ),
    ).fetchall()
    return {(r["dispenser_id"], r["event_id"]) for r in rows}


def copy_rows(conn: DbConn, statement: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """``COPY … FROM STDIN`` of ``rows``: the fastest way in for a batch's many rows."""
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def copy_events(conn: DbConn, rows: Sequence[EventRow]) -> None:
    """Store events (the ledger has already claimed them)."""
    if rows:
        copy_rows(
            conn,
            "COPY dose_events (dispenser_id, event_id, seq, type, occurred_at, received_at,"
            " dose_due_at, doses_left, slot_id, match, payload) FROM STDIN",
            (event_row(r.event, r.received_at, r.slot_id, r.match.value) for r in rows),
        )


def lock_candidate_slots(
    conn: DbConn, ranges: Mapping[str, tuple[datetime, datetime]]
) -> list[SlotSnapshot]:
    """The slots due in each dispenser's range, locked in one order for every gateway (so that
    several writing at once never deadlock): the writer decides and updates under that lock."""
    if not ranges:
        return []
    ids = sorted(ranges)
    rows = conn.execute(
        "SELECT s.id, s.dispenser_id, s.due_at, s.window_end, s.state FROM dose_slots s"
        " JOIN unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS u(d, lo, hi)"
        "   ON s.dispenser_id = u.d AND s.due_at BETWEEN u.lo AND u.hi"
        " ORDER BY s.dispenser_id, s.due_at FOR UPDATE OF s",
        (ids, [ranges[d][0] for d in ids], [ranges[d][1] for d in ids]),
    ).fetchall()
    return [
        SlotSnapshot(
            r["id"], r["dispenser_id"], r["due_at"], r["window_end"], SlotState(r["state"])
        )
        for r in rows
    ]


def write_slots(conn: DbConn, writes: Sequence[SlotWrite]) -> None:
    """New slot states; ``closed_at`` and ``taken_event_id`` keep a value already stored
    (``closed_at`` and ``taken_event_id`` keep the first value written)."""
    if not writes:
        return
    conn.execute(
        "UPDATE dose_slots s SET state = u.state, closed_at = COALESCE(s.closed_at, u.closed_at),"
        " taken_event_id = COALESCE(u.taken_by, s.taken_event_id)"
        " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[])"
        "   AS u(id, state, closed_at, taken_by) WHERE s.id = u.id",
        (
            [w.id for w in writes],
            [w.state.value for w in writes],
            [w.closed_at for w in writes],
            [w.taken_by for w in writes],
        ),
    )


def list_events(conn: DbConn, dispenser_id: str, limit: int) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT event_id, seq, type, occurred_at, received_at, dose_due_at, doses_left,"
        " slot_id, match, payload FROM dose_events WHERE dispenser_id = %s"
        " ORDER BY occurred_at DESC, seq DESC LIMIT %s",
        (dispenser_id, limit),
    ).fetchall()


def copy_statuses(conn: DbConn, rows: Sequence[StatusRow]) -> None:
    """Status history rows."""
    if rows:
        copy_rows(
            conn,
            "COPY dispenser_status (dispenser_id, at, received_at, battery_pct, on_mains,"
            " doses_left, temperature_c, firmware, rssi_dbm, schedule_version, payload)"
            " FROM STDIN",
            ((*status_row(r.status, r.received_at), payload(r.status)) for r in rows),
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
        payload(event),
    )


def payload(message: Event | Status) -> str:
    """The validated message as JSON text for a ``jsonb`` column of a COPY (serialised by
    pydantic-core: twice as fast as json.dumps of a dumped model, and the same document; the
    server parses it into jsonb as it would a Jsonb parameter, without a wrapper per row)."""
    return message.model_dump_json()


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
