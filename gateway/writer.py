"""Store a batch of received messages in one transaction; each message in its own savepoint.

A poison message (one that makes the database refuse it) rolls back only its savepoint and is
quarantined instead, so it never costs its neighbours in the batch. The caller acknowledges the
MQTT messages only after :func:`write_batch` returns, i.e. after commit.

Presence (see :mod:`dosewatch.db.presence`) is updated once per batch, at its end: which
dispensers were heard from, and clock samples for the offset estimate. It has its own savepoint,
so a failure there is logged and never costs the batch its events. So is the per-dispenser
tracking (:mod:`dosewatch.db.status`): sequence gaps, doses left, the applied config version.
The latest-status row and refills are written with their message, in its savepoint.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from dosewatch.db import DbConn, registry
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import events as event_sql
from dosewatch.db import presence as presence_sql
from dosewatch.db import quarantine as quarantine_sql
from dosewatch.db import schedules as slot_sql
from dosewatch.db import status as status_sql
from dosewatch.domain.matching import SlotRef, candidate_range, match_slot
from dosewatch.domain.protocol import DOSE_EVENT_TYPES, Event, EventType, Status
from dosewatch.domain.slots import TAKEN_STATES, SlotState, apply_event
from gateway.batch import store_events
from gateway.decode import Decoded, Online, Rejection, decode
from gateway.loglimit import LogLimit

log = logging.getLogger(__name__)
_quarantine_log = LogLimit(log)  # a flood of garbage must not flood the log too


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    received_at: datetime
    # Delivered with the MQTT retain flag: the broker's stored copy, sent because we subscribed
    # (e.g. on every gateway restart), not a message the device sent just now.
    retained: bool = False


Seen = dict[str, tuple[datetime, list[float]]]  # dispenser → (latest received_at, clock samples)


@dataclass
class _Tracking:
    """What a batch adds to the per-dispenser tracking, written once at its end."""

    seqs: dict[str, list[int]] = field(default_factory=dict)
    supply: status_sql.Supply = field(default_factory=dict)
    applied: status_sql.Applied = field(default_factory=dict)
    heartbeats: dict[str, datetime] = field(default_factory=dict)

    def note(self, message: Inbound, item: Decoded, outcome: str) -> None:
        if isinstance(item, Event) and outcome == "stored":
            self.seqs.setdefault(item.dispenser_id, []).append(item.seq)
            if item.doses_left is not None and item.type in _SUPPLY_EVENTS:
                status_sql.note_supply(
                    self.supply,
                    item.dispenser_id,
                    item.occurred_at,
                    item.doses_left,
                    item.type.value,
                )
            if item.type == EventType.CONFIG_APPLIED:
                version = item.detail.get("version")
                if isinstance(version, int) and not isinstance(version, bool):
                    status_sql.note_applied(
                        self.applied,
                        item.dispenser_id,
                        version,
                        message.received_at,
                        "config_applied",
                    )
                else:
                    log.warning(
                        "config_applied from %s without an integer detail.version",
                        item.dispenser_id,
                    )
        elif isinstance(item, Status) and outcome == "status" and not message.retained:
            self.heartbeats[item.dispenser_id] = max(
                message.received_at, self.heartbeats.get(item.dispenser_id, message.received_at)
            )
            if item.doses_left is not None:
                status_sql.note_supply(
                    self.supply, item.dispenser_id, item.at, item.doses_left, "status"
                )
            if item.schedule_version is not None:
                status_sql.note_applied(
                    self.applied,
                    item.dispenser_id,
                    item.schedule_version,
                    message.received_at,
                    "status",
                )


_SUPPLY_EVENTS = frozenset({EventType.DOSE_TAKEN, EventType.REFILL})


def write_batch(
    conn: DbConn, batch: list[Inbound], reasons: Counter[str] | None = None
) -> Counter[str]:
    """Store, match or quarantine every message; return counts by outcome.

    ``reasons``, when given, receives the quarantine reasons of this attempt (for metrics: count
    them only once the caller's commit succeeded).
    """
    outcomes: Counter[str] = Counter()
    seen: Seen = {}
    tracking = _Tracking()
    decoded = [(m, _decode(m)) for m in batch]
    ids = sorted({d.dispenser_id for _, d in decoded if isinstance(d, Event | Status | Online)})
    with conn.transaction():
        known = registry.known_dispensers(conn, ids) if ids else set()
        events: list[tuple[Inbound, Decoded]] = []
        others: list[tuple[Inbound, Decoded]] = []
        for message, item in decoded:
            if isinstance(item, Event | Status | Online) and item.dispenser_id not in known:
                item = Rejection(f"unknown dispenser {item.dispenser_id!r}", item.dispenser_id)
            (events if isinstance(item, Event) else others).append((message, item))

        def done(message: Inbound, item: Decoded, outcome: str) -> None:
            outcomes[outcome] += 1
            if outcome == "quarantined" and reasons is not None:
                assert isinstance(item, Rejection)
                reasons[item.reason] += 1
            _note_seen(seen, message, item, outcome)
            tracking.note(message, item, outcome)

        if events:
            try:
                with conn.transaction():
                    stored = store_events(
                        conn, [(m.received_at, e) for m, e in events if isinstance(e, Event)]
                    )
            except Exception:  # a message the database refuses: find it, one savepoint each
                log.exception("set-based write of %d events failed; one by one", len(events))
                others = events + others
            else:
                for (message, item), outcome in zip(events, stored, strict=True):
                    done(message, item, outcome)
        for message, item in others:
            try:
                with conn.transaction():
                    outcome = _store(conn, message, item)
            except Exception as exc:  # one poison message must not cost its neighbours
                log.exception("could not store message on %s; quarantining it", message.topic)
                first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                reason = f"storage error: {first_line[:300]}"
                with conn.transaction():
                    _quarantine(conn, message, Rejection(reason, None))
                outcomes["quarantined"] += 1
                if reasons is not None:
                    reasons[reason] += 1
                continue
            done(message, item, outcome)
        now = max(m.received_at for m in batch) if batch else None
        _record_seen(conn, seen, tracking.heartbeats, batch)
        if now is not None:
            _record_tracking(conn, tracking, now)
    return outcomes


def _decode(message: Inbound) -> Decoded:
    try:
        return decode(message.topic, message.payload)
    except Exception as exc:  # decode() is meant never to raise; if it does, keep the bytes
        log.exception("decoder failed on %s", message.topic)
        return Rejection(f"could not decode: {type(exc).__name__}", None)


def _store(conn: DbConn, message: Inbound, item: Decoded) -> str:
    if isinstance(item, Rejection):
        _quarantine(conn, message, item)
        return "quarantined"
    if isinstance(item, Status):
        event_sql.insert_status(conn, item, message.received_at)
        status_sql.upsert_latest_status(conn, item, message.received_at)
        return "status"
    if isinstance(item, Online):
        presence_sql.record_online(
            conn, item.dispenser_id, item.online, message.received_at, retained=message.retained
        )
        return "online"
    if not event_sql.claim_event_id(conn, item, message.received_at):
        return "duplicate"
    slot_id, match = _match_and_apply(conn, item, message.received_at)
    event_sql.insert_event(conn, item, message.received_at, slot_id, match)
    if item.type == EventType.REFILL:
        status_sql.record_refill(conn, item, message.received_at)
    return "stored"


def _note_seen(seen: Seen, message: Inbound, item: Decoded, outcome: str) -> None:
    """Count a stored message as a sign of life, with a clock sample when it carries one.

    Not signs of life: a retained copy (old, redelivered on subscribe) and an ``online`` '0'
    (the Last Will, which the broker publishes because the device has gone). A duplicate event
    is a live replay, so it counts, but its ``occurred_at`` is old news and gives no sample.
    """
    if message.retained or outcome == "quarantined":
        return
    device_time: datetime | None
    if isinstance(item, Status):
        device_time = item.at
    elif isinstance(item, Event):
        device_time = None if outcome == "duplicate" else item.occurred_at
    elif isinstance(item, Online) and item.online:
        device_time = None
    else:
        return
    last, samples = seen.get(item.dispenser_id, (message.received_at, []))
    if device_time is not None:
        samples.append((device_time - message.received_at).total_seconds())
    seen[item.dispenser_id] = (max(last, message.received_at), samples)


def _record_seen(
    conn: DbConn, seen: Seen, heartbeats: dict[str, datetime], batch: list[Inbound]
) -> None:
    if not seen:
        return
    # The writer has no clock of its own; the batch's newest receive time is the server's "now".
    now = max(m.received_at for m in batch)
    try:
        with conn.transaction():
            presence_sql.record_seen(conn, seen, now)
            presence_sql.record_heartbeats(conn, heartbeats)
    except Exception:  # presence is a summary; the batch's events matter more
        log.exception("could not update presence for %d dispensers", len(seen))


def _record_tracking(conn: DbConn, tracking: _Tracking, now: datetime) -> None:
    """Sequence gaps, doses left and applied config: summaries, so a failure costs no events."""
    try:
        with conn.transaction():
            status_sql.record_seqs(conn, tracking.seqs, now)
            status_sql.record_supply(conn, tracking.supply, now)
            status_sql.record_config_applied(conn, tracking.applied)
    except Exception:
        log.exception("could not update sequence/supply/config tracking for this batch")


def _match_and_apply(conn: DbConn, event: Event, received_at: datetime) -> tuple[int | None, str]:
    if event.type not in DOSE_EVENT_TYPES:
        return None, "not_a_dose_event"
    lo, hi = candidate_range(event.occurred_at, event.dose_due_at)
    rows = slot_sql.slots_for_matching(conn, event.dispenser_id, lo, hi)
    chosen = match_slot(
        [SlotRef(r["id"], r["due_at"]) for r in rows],
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
    _quarantine_log.warning("quarantined message on %s: %s", message.topic, rejection.reason)
    quarantine_sql.quarantine(
        conn,
        topic=message.topic,
        payload=message.payload,
        reason=rejection.reason,
        received_at=message.received_at,
        dispenser_id=rejection.dispenser_id,
    )
