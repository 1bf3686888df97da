"""Set-based storage of a batch's valid events: a handful of statements, whatever its size.

The same rules as storing the events one at a time (:func:`gateway.writer._store`), in bulk:

1. the idempotency ledger claims every (dispenser, event_id) in one statement; an event
   already claimed (or repeated within the batch) is a duplicate;
2. the candidate slots of every dose event are read and locked in one statement;
3. each dose event is matched and applied in batch order by the same pure functions
   (``domain/matching``, ``domain/slots``) on an in-memory copy of the slots, so several events
   for one slot in one batch end as they would one by one;
4. changed slots are written in one statement, alarms opened or cleared as decided;
5. the events are written with COPY.

The caller runs this inside a savepoint. If the database refuses anything, the savepoint is
rolled back and the caller stores the batch one message at a time, each in its own savepoint,
so one poison message still never costs its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dosewatch.db import DbConn
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import events as event_sql
from dosewatch.db import status as status_sql
from dosewatch.domain.matching import SlotRef, candidate_range, match_slot
from dosewatch.domain.protocol import DOSE_EVENT_TYPES, Event, EventType
from dosewatch.domain.slots import TAKEN_STATES, SlotState, apply_event


@dataclass
class _Slot:
    id: int
    dispenser_id: str
    due_at: datetime
    window_end: datetime
    state: SlotState
    changed: bool = False
    closed_at: datetime | None = None
    taken_by: str | None = None


def store_events(conn: DbConn, events: list[tuple[datetime, Event]]) -> list[str]:
    """Store ``(received_at, event)`` pairs; return each one's outcome (stored / duplicate)."""
    outcomes = ["duplicate"] * len(events)
    first: dict[tuple[str, str], int] = {}
    for i, (_, e) in enumerate(events):
        first.setdefault((e.dispenser_id, e.event_id), i)
    claimed = event_sql.claim_event_ids(
        conn, [(d, eid, events[i][0]) for (d, eid), i in first.items()]
    )
    fresh = sorted(i for key, i in first.items() if key in claimed)
    slots = _lock_candidates(conn, [events[i][1] for i in fresh])
    by_dispenser: dict[str, list[_Slot]] = {}
    for slot in slots.values():
        by_dispenser.setdefault(slot.dispenser_id, []).append(slot)
    alarm_actions: list[tuple[str, int, datetime, dict[str, str]]] = []
    rows: list[tuple[Event, datetime, int | None, str]] = []
    for i in fresh:
        received_at, e = events[i]
        slot_id, match = _match_and_apply(e, received_at, by_dispenser, alarm_actions)
        rows.append((e, received_at, slot_id, match))
        outcomes[i] = "stored"
    _write_slots(conn, [s for s in slots.values() if s.changed])
    for action, slot_id, at, detail in alarm_actions:
        if action == "open":
            alarm_sql.open_missed_dose_alarm(conn, slot_id, at, via="dispenser")
        else:
            alarm_sql.clear_for_slot(conn, slot_id, at, detail)
    event_sql.copy_events(conn, rows)
    for e, received_at, _, _ in rows:
        if e.type == EventType.REFILL:
            status_sql.record_refill(conn, e, received_at)
    return outcomes


def _lock_candidates(conn: DbConn, events: list[Event]) -> dict[int, _Slot]:
    ranges: dict[str, tuple[datetime, datetime]] = {}
    for e in events:
        if e.type not in DOSE_EVENT_TYPES:
            continue
        lo, hi = candidate_range(e.occurred_at, e.dose_due_at)
        old = ranges.get(e.dispenser_id)
        ranges[e.dispenser_id] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    if not ranges:
        return {}
    ids = sorted(ranges)
    found = conn.execute(
        "SELECT s.id, s.dispenser_id, s.due_at, s.window_end, s.state FROM dose_slots s"
        " JOIN unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS u(d, lo, hi)"
        "   ON s.dispenser_id = u.d AND s.due_at BETWEEN u.lo AND u.hi"
        " ORDER BY s.dispenser_id, s.due_at FOR UPDATE OF s",
        (ids, [ranges[d][0] for d in ids], [ranges[d][1] for d in ids]),
    ).fetchall()
    return {
        r["id"]: _Slot(
            r["id"], r["dispenser_id"], r["due_at"], r["window_end"], SlotState(r["state"])
        )
        for r in found
    }


def _match_and_apply(
    event: Event,
    received_at: datetime,
    by_dispenser: dict[str, list[_Slot]],
    alarm_actions: list[tuple[str, int, datetime, dict[str, str]]],
) -> tuple[int | None, str]:
    if event.type not in DOSE_EVENT_TYPES:
        return None, "not_a_dose_event"
    lo, hi = candidate_range(event.occurred_at, event.dose_due_at)
    candidates = [s for s in by_dispenser.get(event.dispenser_id, []) if lo <= s.due_at <= hi]
    chosen = match_slot(
        [SlotRef(s.id, s.due_at) for s in candidates], event.occurred_at, event.dose_due_at
    )
    if chosen is None:
        return None, "unmatched"
    slot = next(s for s in candidates if s.id == chosen.id)
    change = apply_event(slot.state, event.type, received_at, slot.window_end)
    if change is not None:
        slot.state = change.new_state
        slot.changed = True
        if slot.closed_at is None:
            slot.closed_at = received_at
        if change.new_state in TAKEN_STATES:
            slot.taken_by = event.event_id
        if change.opens_alarm:
            alarm_actions.append(("open", slot.id, received_at, {}))
        if change.clears_alarm:
            detail = {"event_id": event.event_id, "type": event.type.value}
            alarm_actions.append(("clear", slot.id, received_at, detail))
    return slot.id, "matched"


def _write_slots(conn: DbConn, changed: list[_Slot]) -> None:
    """The set-based form of ``schedules.set_slot_state`` (same COALESCE rules)."""
    if not changed:
        return
    conn.execute(
        "UPDATE dose_slots s SET state = u.state, closed_at = COALESCE(s.closed_at, u.closed_at),"
        " taken_event_id = COALESCE(u.taken_by, s.taken_event_id)"
        " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[])"
        "   AS u(id, state, closed_at, taken_by) WHERE s.id = u.id",
        (
            [s.id for s in changed],
            [s.state.value for s in changed],
            [s.closed_at for s in changed],
            [s.taken_by for s in changed],
        ),
    )
