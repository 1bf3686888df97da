"""The ingest plan (pure): a batch of decoded messages + a snapshot of what they touch → the
changes to write.

There is one way to ingest, whatever the batch size. The gateway reads a :class:`Snapshot`
(which dispensers are registered, which event keys this batch claimed first in the idempotency
ledger, the candidate slots of its dose events, locked), asks :func:`plan` what to write, and
executes the :class:`Plan` (``dosewatch.db.ingest.execute``). The set-based write runs that for
the whole batch; the per-message fallback, taken only when the database refuses the batch, runs
exactly the same three steps for one message in its own savepoint. So the two paths cannot drift
apart: they differ in batch size, not in rules.

Within a batch, messages are applied in order to an in-memory copy of the slots, by the domain's
rules (:func:`dosewatch.domain.matching.match_slot`, :func:`dosewatch.domain.slots.apply_event`),
so several events for one slot end as they would one message at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from dosewatch.domain.matching import SlotRef, candidate_range, match_slot
from dosewatch.domain.protocol import DOSE_EVENT_TYPES, Event, EventType, Status
from dosewatch.domain.slots import TAKEN_STATES, SlotState, apply_event


@dataclass(frozen=True)
class Inbound:
    """One message as received from the broker, before decoding."""

    topic: str
    payload: bytes
    received_at: datetime
    # Delivered with the MQTT retain flag: the broker's stored copy, sent because we subscribed
    # (e.g. on every gateway restart), not a message the device sent just now.
    retained: bool = False


@dataclass(frozen=True)
class Rejection:
    reason: str
    dispenser_id: str | None  # from the topic, so quarantine can be listed per dispenser


@dataclass(frozen=True)
class Online:
    dispenser_id: str
    online: bool


Decoded = Event | Status | Online | Rejection


class Outcome(StrEnum):
    STORED = "stored"  # a new event
    DUPLICATE = "duplicate"  # an event already stored (same dispenser and event_id)
    STATUS = "status"
    ONLINE = "online"
    QUARANTINED = "quarantined"


class Match(StrEnum):
    """What matching made of a stored event (``dose_events.match``)."""

    MATCHED = "matched"
    UNMATCHED = "unmatched"
    NOT_A_DOSE_EVENT = "not_a_dose_event"


@dataclass(frozen=True)
class Stored:
    """What became of one message."""

    outcome: Outcome
    rejection: Rejection | None = None  # why, when quarantined


EventKey = tuple[str, str]  # (dispenser_id, event_id): the idempotency ledger's key


@dataclass(frozen=True)
class SlotSnapshot:
    id: int
    dispenser_id: str
    due_at: datetime
    window_end: datetime
    state: SlotState


@dataclass(frozen=True)
class Snapshot:
    known: frozenset[str]  # registered dispensers among the batch's
    fresh: frozenset[EventKey]  # event keys this batch claimed first
    slots: tuple[SlotSnapshot, ...]  # the candidate slots of its dose events, locked


@dataclass(frozen=True)
class EventRow:
    event: Event
    received_at: datetime
    slot_id: int | None
    match: Match


@dataclass(frozen=True)
class SlotWrite:
    """A slot's new state; ``closed_at`` and ``taken_by`` fill only what is still empty."""

    id: int
    state: SlotState
    closed_at: datetime
    taken_by: str | None


@dataclass(frozen=True)
class OpenAlarm:
    slot_id: int
    at: datetime


@dataclass(frozen=True)
class ClearAlarm:
    slot_id: int
    at: datetime
    event_id: str
    type: EventType


@dataclass(frozen=True)
class StatusRow:
    status: Status
    received_at: datetime


@dataclass(frozen=True)
class OnlineRow:
    dispenser_id: str
    online: bool
    at: datetime
    retained: bool


@dataclass(frozen=True)
class QuarantineRow:
    message: Inbound
    rejection: Rejection


@dataclass
class Plan:
    """Everything one batch writes, in the order it must be written."""

    outcomes: list[Stored] = field(default_factory=list)  # one per message, in batch order
    quarantine: list[QuarantineRow] = field(default_factory=list)
    statuses: list[StatusRow] = field(default_factory=list)  # history rows
    latest: list[StatusRow] = field(default_factory=list)  # newest status per dispenser
    online: list[OnlineRow] = field(default_factory=list)  # in batch order: each compares
    slots: list[SlotWrite] = field(default_factory=list)
    alarms: list[OpenAlarm | ClearAlarm] = field(default_factory=list)  # in order: open → clear
    events: list[EventRow] = field(default_factory=list)
    refills: list[EventRow] = field(default_factory=list)


def dispenser_of(item: Decoded) -> str | None:
    return item.dispenser_id if isinstance(item, Event | Status | Online) else None


def resolve(item: Decoded, known: frozenset[str]) -> Decoded:
    """A message from a dispenser nobody registered is quarantined, never stored."""
    d = dispenser_of(item)
    if d is not None and d not in known:
        return Rejection(f"unknown dispenser {d!r}", d)
    return item


def claims(
    messages: Sequence[tuple[Inbound, Decoded]], known: frozenset[str]
) -> list[tuple[str, str, datetime]]:
    """The ledger keys to claim: each event's first occurrence in the batch, with its receive
    time (later repeats are duplicates whatever the ledger says)."""
    first: dict[EventKey, datetime] = {}
    for message, item in messages:
        item = resolve(item, known)
        if isinstance(item, Event):
            first.setdefault((item.dispenser_id, item.event_id), message.received_at)
    return [(d, e, at) for (d, e), at in first.items()]


def slot_ranges(
    messages: Sequence[tuple[Inbound, Decoded]], known: frozenset[str], fresh: frozenset[EventKey]
) -> dict[str, tuple[datetime, datetime]]:
    """Per dispenser, the due-time range holding every candidate slot of its new dose events."""
    ranges: dict[str, tuple[datetime, datetime]] = {}
    for _, item in messages:
        item = resolve(item, known)
        if not isinstance(item, Event) or item.type not in DOSE_EVENT_TYPES:
            continue
        if (item.dispenser_id, item.event_id) not in fresh:
            continue
        lo, hi = candidate_range(item.occurred_at, item.dose_due_at)
        old = ranges.get(item.dispenser_id)
        ranges[item.dispenser_id] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return ranges


def plan(messages: Sequence[tuple[Inbound, Decoded]], snapshot: Snapshot) -> Plan:
    """The changes that storing ``messages`` (in order) makes, given ``snapshot``."""
    out = Plan()
    slots = _Slots(snapshot.slots)
    claimed: set[EventKey] = set()
    latest: dict[str, StatusRow] = {}
    for message, decoded in messages:
        item = resolve(decoded, snapshot.known)
        if isinstance(item, Rejection):
            out.quarantine.append(QuarantineRow(message, item))
            out.outcomes.append(Stored(Outcome.QUARANTINED, item))
        elif isinstance(item, Status):
            row = StatusRow(item, message.received_at)
            out.statuses.append(row)
            # The stored latest status is replaced only by a newer device time: of several in
            # one batch the first with the newest ``at`` is the one that would stand.
            old = latest.get(item.dispenser_id)
            if old is None or old.status.at < item.at:
                latest[item.dispenser_id] = row
            out.outcomes.append(Stored(Outcome.STATUS))
        elif isinstance(item, Online):
            out.online.append(
                OnlineRow(item.dispenser_id, item.online, message.received_at, message.retained)
            )
            out.outcomes.append(Stored(Outcome.ONLINE))
        else:
            key = (item.dispenser_id, item.event_id)
            if key not in snapshot.fresh or key in claimed:
                out.outcomes.append(Stored(Outcome.DUPLICATE))
                continue
            claimed.add(key)
            slot_id, match = slots.apply(item, message.received_at, out.alarms)
            row_ = EventRow(item, message.received_at, slot_id, match)
            out.events.append(row_)
            if item.type is EventType.REFILL:
                out.refills.append(row_)
            out.outcomes.append(Stored(Outcome.STORED))
    out.latest = [latest[d] for d in sorted(latest)]  # one lock order for every gateway
    out.slots = slots.writes()
    return out


def storage_failure(message: Inbound, error: str) -> Plan:
    """The plan for a message the database refused even alone: quarantine its raw bytes."""
    first_line = (error.strip().splitlines() or ["unknown error"])[0]
    return quarantine_all([message], f"storage error: {first_line[:300]}")


def quarantine_all(messages: Sequence[Inbound], reason: str) -> Plan:
    """The plan that keeps only the raw bytes of ``messages``, for one ``reason``."""
    rejection = Rejection(reason, None)
    return Plan(
        outcomes=[Stored(Outcome.QUARANTINED, rejection) for _ in messages],
        quarantine=[QuarantineRow(m, rejection) for m in messages],
    )


class _Slots:
    """The snapshot's slots as the batch changes them, one event after the other."""

    def __init__(self, slots: Iterable[SlotSnapshot]) -> None:
        self._by_dispenser: dict[str, list[SlotSnapshot]] = {}
        for s in sorted(slots, key=lambda s: (s.dispenser_id, s.due_at, s.id)):
            self._by_dispenser.setdefault(s.dispenser_id, []).append(s)
        self._written: dict[int, SlotWrite] = {}

    def apply(
        self, event: Event, received_at: datetime, alarms: list[OpenAlarm | ClearAlarm]
    ) -> tuple[int | None, Match]:
        if event.type not in DOSE_EVENT_TYPES:
            return None, Match.NOT_A_DOSE_EVENT
        lo, hi = candidate_range(event.occurred_at, event.dose_due_at)
        candidates = [
            s for s in self._by_dispenser.get(event.dispenser_id, []) if lo <= s.due_at <= hi
        ]
        chosen = match_slot(
            [SlotRef(s.id, s.due_at) for s in candidates], event.occurred_at, event.dose_due_at
        )
        if chosen is None:
            return None, Match.UNMATCHED
        slot = next(s for s in candidates if s.id == chosen.id)
        change = apply_event(slot.state, event.type, received_at, slot.window_end)
        if change is None:
            return slot.id, Match.MATCHED
        self._replace(replace(slot, state=change.new_state))
        old = self._written.get(slot.id)
        taken_by = event.event_id if change.new_state in TAKEN_STATES else None
        self._written[slot.id] = SlotWrite(
            slot.id,
            change.new_state,
            old.closed_at if old else received_at,
            taken_by or (old.taken_by if old else None),
        )
        if change.opens_alarm:
            alarms.append(OpenAlarm(slot.id, received_at))
        if change.clears_alarm:
            alarms.append(ClearAlarm(slot.id, received_at, event.event_id, event.type))
        return slot.id, Match.MATCHED

    def _replace(self, slot: SlotSnapshot) -> None:
        row = self._by_dispenser[slot.dispenser_id]
        row[next(i for i, s in enumerate(row) if s.id == slot.id)] = slot

    def writes(self) -> list[SlotWrite]:
        return [self._written[i] for i in sorted(self._written)]
