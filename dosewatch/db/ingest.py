"""The SQL of one ingest: read the :class:`~dosewatch.domain.ingest.Snapshot` a batch needs,
then execute the :class:`~dosewatch.domain.ingest.Plan` the domain made of it.

This is the only place the gateway's writes are sequenced, whatever the batch size: the
set-based write calls :func:`store` with the whole batch, the per-message fallback with one
message in its own savepoint. Every statement is set-based (a handful per batch, whatever its
size) except the rare ones that compare with what is stored row by row (``online``, alarms).
"""

from __future__ import annotations

from collections.abc import Sequence

from dosewatch.db import DbConn, registry
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import events as event_sql
from dosewatch.db import presence as presence_sql
from dosewatch.db import quarantine as quarantine_sql
from dosewatch.db import status as status_sql
from dosewatch.domain import ingest
from dosewatch.domain.ingest import ClearAlarm, Decoded, Inbound, Plan, Snapshot, Stored


def store(conn: DbConn, messages: Sequence[tuple[Inbound, Decoded]]) -> list[Stored]:
    """Store ``messages`` (in order); return each one's outcome. Run it in a savepoint: the
    ledger claims are written before the plan is made, and roll back with it on failure."""
    snapshot = read_snapshot(conn, messages)
    plan = ingest.plan(messages, snapshot)
    execute(conn, plan)
    return plan.outcomes


def read_snapshot(conn: DbConn, messages: Sequence[tuple[Inbound, Decoded]]) -> Snapshot:
    ids = sorted({d for _, item in messages if (d := ingest.dispenser_of(item)) is not None})
    known = frozenset(registry.known_dispensers(conn, ids) if ids else ())
    fresh = frozenset(event_sql.claim_event_ids(conn, ingest.claims(messages, known)))
    slots = event_sql.lock_candidate_slots(conn, ingest.slot_ranges(messages, known, fresh))
    return Snapshot(known, fresh, tuple(slots))


def execute(conn: DbConn, plan: Plan) -> None:
    quarantine_sql.upsert_quarantine(conn, plan.quarantine)
    event_sql.copy_statuses(conn, plan.statuses)
    status_sql.upsert_latest_statuses(conn, plan.latest)
    for o in plan.online:
        presence_sql.record_online(conn, o.dispenser_id, o.online, o.at, retained=o.retained)
    event_sql.write_slots(conn, plan.slots)
    for action in plan.alarms:
        if isinstance(action, ClearAlarm):
            detail = {"event_id": action.event_id, "type": action.type.value}
            alarm_sql.clear_for_slot(conn, action.slot_id, action.at, detail)
        else:
            alarm_sql.open_missed_dose_alarm(conn, action.slot_id, action.at, via="dispenser")
    event_sql.copy_events(conn, plan.events)
    for r in plan.refills:
        status_sql.record_refill(conn, r.event, r.received_at)


def quarantine_refused(conn: DbConn, message: Inbound, error: str) -> Stored:
    """Quarantine a message the database refused even alone (its raw bytes and the error)."""
    plan = ingest.storage_failure(message, error)
    execute(conn, plan)
    return plan.outcomes[0]


def quarantine_all(conn: DbConn, messages: Sequence[Inbound], reason: str) -> None:
    """Quarantine ``messages`` as raw bytes (the gateway met a defect storing them)."""
    execute(conn, ingest.quarantine_all(messages, reason))
