"""Store a batch of received messages in one transaction: set-based, one message at a time only
when the database refuses the batch.

Both ways run the same ingest plan (:mod:`dosewatch.domain.ingest`, executed by
:func:`dosewatch.db.ingest.store`): the whole batch in one savepoint, or, if the database
refuses anything in it (a :class:`psycopg.Error` on a live connection), each message alone in
its own savepoint. A message refused even alone — a poison message — is quarantined with its
raw bytes and the error, so it never costs its neighbours. Any other exception is a bug, not a
refusal: it is not caught here (see :mod:`gateway.mqtt`), so it can never turn into a silent
slow path.

The caller acknowledges the MQTT messages only after :func:`write_batch` returns, i.e. after
commit. The per-dispenser summaries (:mod:`gateway.tracking`) are written at the batch's end.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import psycopg

from dosewatch.db import DbConn
from dosewatch.db import ingest as ingest_sql
from dosewatch.domain.ingest import Decoded, Inbound, Stored
from gateway import metrics
from gateway.decode import decode
from gateway.loglimit import LogLimit
from gateway.tracking import BatchTracking

log = logging.getLogger(__name__)
_quarantine_log = LogLimit(log)  # a flood of garbage must not flood the log too

__all__ = ["Inbound", "store_batch", "store_one_by_one", "write_batch"]


def write_batch(
    conn: DbConn, batch: list[Inbound], reasons: Counter[str] | None = None
) -> Counter[str]:
    """Store, match or quarantine every message; return counts by outcome.

    ``reasons``, when given, receives the quarantine reasons of this attempt (for metrics: count
    them only once the caller's commit succeeded).
    """
    decoded = [(m, decode(m.topic, m.payload)) for m in batch]
    outcomes: Counter[str] = Counter()
    tracking = BatchTracking()
    with conn.transaction():
        try:
            results = store_batch(conn, decoded)
        except psycopg.Error:
            if conn.broken:  # the database is gone, not refusing: the caller retries the batch
                raise
            metrics.FALLBACKS.inc()
            log.warning(
                "the database refused the set-based write of %d messages; one by one",
                len(decoded),
                exc_info=True,
            )
            results = store_one_by_one(conn, decoded)
        for (message, item), stored in zip(decoded, results, strict=True):
            outcomes[stored.outcome] += 1
            if stored.rejection is not None:
                _quarantine_log.warning(
                    "quarantined message on %s: %s", message.topic, stored.rejection.reason
                )
                if reasons is not None:
                    reasons[stored.rejection.reason] += 1
            tracking.note(message, item, stored.outcome)
        if batch:
            tracking.record(conn, max(m.received_at for m in batch))
    return outcomes


def store_batch(conn: DbConn, decoded: Sequence[tuple[Inbound, Decoded]]) -> list[Stored]:
    """The set-based write: the whole batch's plan in one savepoint."""
    with conn.transaction():
        return ingest_sql.store(conn, decoded)


def store_one_by_one(conn: DbConn, decoded: Sequence[tuple[Inbound, Decoded]]) -> list[Stored]:
    """The fallback: the same plan for each message alone, each in its own savepoint."""
    results: list[Stored] = []
    for message, item in decoded:
        try:
            results += store_batch(conn, [(message, item)])
        except psycopg.Error as exc:  # refused even alone: a poison message
            if conn.broken:
                raise
            log.warning("the database refused a message on %s", message.topic, exc_info=True)
            with conn.transaction():
                results.append(ingest_sql.quarantine_refused(conn, message, str(exc)))
    return results
