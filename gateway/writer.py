"""Store a batch of received messages in one transaction; each message in its own savepoint.

A poison message (one that makes the database refuse it) rolls back only its savepoint and is
quarantined instead, so it never costs its neighbours in the batch. The caller acknowledges the
MQTT messages only after :func:`write_batch` returns, i.e. after commit.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from dosewatch.db import DbConn, registry
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import events as event_sql
from dosewatch.db import quarantine as quarantine_sql
from dosewatch.db import schedules as slot_sql
from dosewatch.domain.matching import SlotRef, candidate_range, match_slot
from dosewatch.domain.protocol import DOSE_EVENT_TYPES, Event, Status
from dosewatch.domain.slots import TAKEN_STATES, SlotState, apply_event
from gateway.decode import Online, Rejection, decode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    received_at: datetime


def write_batch(conn: DbConn, batch: list[Inbound]) -> Counter[str]:
    """Store, match or quarantine every message; return counts by outcome."""
    outcomes: Counter[str] = Counter()
    decoded = [(m, _decode(m)) for m in batch]
    ids = sorted({d.dispenser_id for _, d in decoded if isinstance(d, Event | Status)})
    with conn.transaction():
        known = registry.known_dispensers(conn, ids) if ids else set()
        for message, item in decoded:
            if isinstance(item, Event | Status) and item.dispenser_id not in known:
                item = Rejection(f"unknown dispenser {item.dispenser_id!r}", item.dispenser_id)
            try:
                with conn.transaction():
                    outcomes[_store(conn, message, item)] += 1
            except Exception as exc:  # one poison message must not cost its neighbours
                log.exception("could not store message on %s; quarantining it", message.topic)
                first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                reason = f"storage error: {first_line[:300]}"
                with conn.transaction():
                    _quarantine(conn, message, Rejection(reason, None))
                outcomes["quarantined"] += 1
    return outcomes


def _decode(message: Inbound) -> Event | Status | Online | Rejection:
    try:
        return decode(message.topic, message.payload)
    except Exception as exc:  # decode() is meant never to raise; if it does, keep the bytes
        log.exception("decoder failed on %s", message.topic)
        return Rejection(f"could not decode: {type(exc).__name__}", None)


def _store(conn: DbConn, message: Inbound, item: Event | Status | Online | Rejection) -> str:
    if isinstance(item, Rejection):
        _quarantine(conn, message, item)
        return "quarantined"
    if isinstance(item, Status):
        event_sql.insert_status(conn, item, message.received_at)
        return "status"
    if isinstance(item, Online):
        return "online"
    if not event_sql.claim_event_id(conn, item, message.received_at):
        return "duplicate"
    slot_id, match = _match_and_apply(conn, item, message.received_at)
    event_sql.insert_event(conn, item, message.received_at, slot_id, match)
    return "stored"


def _match_and_apply(conn: DbConn, event: Event, received_at: datetime) -> tuple[int | None, str]:
    if event.type not in DOSE_EVENT_TYPES:
        return None, "not_a_dose_event"
    lo, hi = candidate_range(event.occurred_at, event.dose_due_at)
    rows = slot_sql.slots_for_matching(conn, event.dispenser_id, lo, hi)
    chosen = match_slot(
        [SlotRef(r["id"], r["due_at"], r["state"] not in TAKEN_STATES) for r in rows],
        event.occurred_at,
        event.dose_due_at,
    )
    if chosen is None:
        return None, "unmatched"
    row = next(r for r in rows if r["id"] == chosen.id)
    change = apply_event(SlotState(row["state"]), event.type, received_at, row["window_end"])
    if change is not None:
        taken_by = event.event_id if change.new_state in TAKEN_STATES else None
        slot_sql.set_slot_state(conn, chosen.id, change.new_state.value, received_at, taken_by)
        if change.opens_alarm:
            alarm_sql.open_missed_dose_alarm(conn, chosen.id, received_at, via="dispenser")
        if change.clears_alarm:
            alarm_sql.clear_for_slot(
                conn, chosen.id, received_at, {"event_id": event.event_id, "type": event.type}
            )
    return chosen.id, "matched"


def _quarantine(conn: DbConn, message: Inbound, rejection: Rejection) -> None:
    log.warning("quarantined message on %s: %s", message.topic, rejection.reason)
    quarantine_sql.quarantine(
        conn,
        topic=message.topic,
        payload=message.payload,
        reason=rejection.reason,
        received_at=message.received_at,
        dispenser_id=rejection.dispenser_id,
    )
