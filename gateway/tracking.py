"""What a batch adds to the per-dispenser summaries, written once at its end.

Presence (see :mod:`dosewatch.db.presence`): which dispensers were heard from, and clock samples
for the offset estimate. Tracking (:mod:`dosewatch.db.status`): sequence gaps, doses left, the
applied config version. Both are summaries: each has its own savepoint, so a database refusing
one is logged and never costs the batch its events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from dosewatch.db import DbConn
from dosewatch.db import presence as presence_sql
from dosewatch.db import status as status_sql
from dosewatch.domain.ingest import Decoded, Inbound, Online, Outcome
from dosewatch.domain.protocol import Event, EventType, Status

log = logging.getLogger(__name__)

_SUPPLY_EVENTS = frozenset({EventType.DOSE_TAKEN, EventType.REFILL})

Seen = dict[str, tuple[datetime, list[float]]]  # dispenser → (latest received_at, clock samples)


@dataclass
class BatchTracking:
    seen: Seen = field(default_factory=dict)
    seqs: dict[str, list[int]] = field(default_factory=dict)
    supply: status_sql.Supply = field(default_factory=dict)
    applied: status_sql.Applied = field(default_factory=dict)
    heartbeats: dict[str, datetime] = field(default_factory=dict)

    def note(self, message: Inbound, item: Decoded, outcome: Outcome) -> None:
        """Note one committed message's outcome (in batch order)."""
        self._note_seen(message, item, outcome)
        if isinstance(item, Event) and outcome is Outcome.STORED:
            self._note_event(message, item)
        elif isinstance(item, Status) and outcome is Outcome.STATUS and not message.retained:
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

    def _note_event(self, message: Inbound, item: Event) -> None:
        self.seqs.setdefault(item.dispenser_id, []).append(item.seq)
        if item.doses_left is not None and item.type in _SUPPLY_EVENTS:
            status_sql.note_supply(
                self.supply, item.dispenser_id, item.occurred_at, item.doses_left, item.type.value
            )
        if item.type == EventType.CONFIG_APPLIED:
            version = item.detail.get("version")
            if isinstance(version, int) and not isinstance(version, bool):
                status_sql.note_applied(
                    self.applied, item.dispenser_id, version, message.received_at, "config_applied"
                )
            else:
                log.warning(
                    "config_applied from %s without an integer detail.version", item.dispenser_id
                )

    def _note_seen(self, message: Inbound, item: Decoded, outcome: Outcome) -> None:
        """Count a stored message as a sign of life, with a clock sample when it carries one.

        Not signs of life: a retained copy (old, redelivered on subscribe) and an ``online`` '0'
        (the Last Will, which the broker publishes because the device has gone). A duplicate
        event is a live replay, so it counts, but its ``occurred_at`` is old news and gives no
        sample.
        """
        if message.retained or outcome is Outcome.QUARANTINED:
            return
        device_time: datetime | None
        if isinstance(item, Status):
            device_time = item.at
        elif isinstance(item, Event):
            device_time = None if outcome is Outcome.DUPLICATE else item.occurred_at
        elif isinstance(item, Online) and item.online:
            device_time = None
        else:
            return
        last, samples = self.seen.get(item.dispenser_id, (message.received_at, []))
        if device_time is not None:
            samples.append((device_time - message.received_at).total_seconds())
        self.seen[item.dispenser_id] = (max(last, message.received_at), samples)

    def record(self, conn: DbConn, now: datetime) -> None:
        """Write the summaries; ``now`` is the batch's newest receive time (the writer has no
        clock of its own: that is the server's "now")."""
        if self.seen:
            try:
                with conn.transaction():
                    presence_sql.record_seen(conn, self.seen, now)
                    presence_sql.record_heartbeats(conn, self.heartbeats)
            except psycopg.Error:
                if conn.broken:  # not a refusal: the database is gone, the batch must retry
                    raise
                log.exception("could not update presence for %d dispensers", len(self.seen))
        try:
            with conn.transaction():
                status_sql.record_seqs(conn, self.seqs, now)
                status_sql.record_supply(conn, self.supply, now)
                status_sql.record_config_applied(conn, self.applied)
        except psycopg.Error:
            if conn.broken:
                raise
            log.exception("could not update sequence/supply/config tracking for this batch")
