# mypy: disable-error-code="call-overload,index"
"""Quarantine counts repeats: the same bytes on the same topic for the same reason are one record,
whichever write path stored them (one row, a batch, a batch holding it twice, the per-message
fallback), with the first and last receipt and the count (real database)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from dosewatch.db import ingest as ingest_sql
from dosewatch.db import quarantine as quarantine_sql
from dosewatch.domain.ingest import Inbound, QuarantineRow, Rejection
from gateway.decode import decode
from gateway.writer import store_one_by_one, write_batch
from tests.helpers import add_dispenser

TOPIC = "dosewatch/v1/dispensers/DSP-Q/events"


def rows(pool: ConnectionPool) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        return conn.execute(
            "SELECT id, topic, payload, reason, dispenser_id, received_at, last_received_at,"
            " repeats FROM quarantine ORDER BY id"
        ).fetchall()


def single(pool: ConnectionPool, clock: FakeClock, payload: bytes, reason: str) -> int:
    with pool.connection() as conn:
        return quarantine_sql.quarantine(
            conn,
            topic=TOPIC,
            payload=payload,
            reason=reason,
            received_at=clock.now(),
            dispenser_id="DSP-Q",
        )


def batch(pool: ConnectionPool, messages: list[Inbound], reason: str) -> None:
    rejection = Rejection(reason, "DSP-Q")
    with pool.connection() as conn:
        quarantine_sql.upsert_quarantine(conn, [QuarantineRow(m, rejection) for m in messages])


def test_a_single_insert_twice_is_one_record_with_first_and_last_receipt(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    first = clock.now()
    a = single(pool, clock, b"{not json", "invalid_json")
    clock.advance(timedelta(days=3))  # a recurrence days later counts on the same record
    b = single(pool, clock, b"{not json", "invalid_json")
    [row] = rows(pool)
    assert a == b == row["id"]
    assert (row["repeats"], row["received_at"], row["last_received_at"]) == (2, first, clock.now())
    assert bytes(row["payload"]) == b"{not json" and row["dispenser_id"] == "DSP-Q"


def test_a_different_reason_payload_or_topic_is_a_record_of_its_own(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    single(pool, clock, b"{not json", "invalid_json")
    single(pool, clock, b"{not json", "oversize")
    single(pool, clock, b"{not json!", "invalid_json")
    with pool.connection() as conn:
        quarantine_sql.quarantine(
            conn,
            topic="dosewatch/v1/dispensers/DSP-R/events",
            payload=b"{not json",
            reason="invalid_json",
            received_at=clock.now(),
            dispenser_id="DSP-R",
        )
    assert [r["repeats"] for r in rows(pool)] == [1, 1, 1, 1]


def test_the_same_message_in_two_batches_is_one_record(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    first = clock.now()
    batch(pool, [Inbound(TOPIC, b"\xff\xfe", first), Inbound(TOPIC, b"other", first)], "bad")
    later = clock.advance(timedelta(seconds=5))
    batch(pool, [Inbound(TOPIC, b"\xff\xfe", later)], "bad")
    got = {bytes(r["payload"]): r for r in rows(pool)}
    assert set(got) == {b"\xff\xfe", b"other"}
    assert (got[b"\xff\xfe"]["repeats"], got[b"other"]["repeats"]) == (2, 1)
    assert got[b"\xff\xfe"]["received_at"] == first
    assert got[b"\xff\xfe"]["last_received_at"] == later


def test_a_flood_of_one_message_in_one_batch_collapses_to_one_record(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    t = clock.now()
    # Receive times out of order: the first and last receipt are the batch's min and max.
    times = [t + timedelta(seconds=s) for s in (3, 0, 7, 1)]
    batch(pool, [Inbound(TOPIC, b"x" * 9000, at) for at in times] * 250, "oversize")
    [row] = rows(pool)
    assert (row["repeats"], row["received_at"], row["last_received_at"]) == (
        1000,
        t,
        t + timedelta(seconds=7),
    )
    batch(pool, [Inbound(TOPIC, b"x" * 9000, t - timedelta(seconds=1))] * 2, "oversize")
    [row] = rows(pool)  # an older receipt committed later moves the first receipt back
    assert (row["repeats"], row["received_at"]) == (1002, t - timedelta(seconds=1))


def test_the_per_message_fallback_collapses_repeats_too(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-Q", clock.now())
    garbage = Inbound(TOPIC, b"{not json", clock.now())
    good = Inbound(TOPIC, event("DSP-Q", 1, "lid_opened", clock.now(), event_id="g1"), clock.now())
    decoded = [(m, decode(m.topic, m.payload)) for m in (garbage, good, garbage)]
    with pool.connection() as conn, conn.transaction():
        outcomes = [s.outcome.value for s in store_one_by_one(conn, decoded)]
    assert outcomes == ["quarantined", "stored", "quarantined"]
    [row] = rows(pool)
    assert bytes(row["payload"]) == b"{not json" and row["repeats"] == 2


def test_a_poison_message_refused_twice_is_one_storage_error_record(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    """Refused even alone (the fallback's ``quarantine_refused``), then redelivered."""
    add_dispenser(pool, "DSP-Q", clock.now())
    poison = json.loads(event("DSP-Q", 2, "error", clock.now(), event_id="bad"))
    poison["detail"] = {"message": "nul \u0000 byte"}  # valid JSON; jsonb refuses it
    message = Inbound(TOPIC, json.dumps(poison).encode(), clock.now())
    for _ in range(2):
        with pool.connection() as conn:
            assert write_batch(conn, [message]) == {"quarantined": 1}
    [row] = rows(pool)
    assert row["reason"].startswith("storage error") and row["repeats"] == 2
    assert row["dispenser_id"] is None  # the storage-error plan names no dispenser


def test_a_batch_quarantined_after_a_bug_twice_is_one_record_per_message(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    messages = [Inbound(TOPIC, b"a", clock.now()), Inbound(TOPIC, b"b", clock.now())]
    for _ in range(2):
        with pool.connection() as conn, conn.transaction():
            ingest_sql.quarantine_all(conn, messages, "gateway bug: KeyError: 'x'")
    # (ids within one batch follow the digest, the upsert's lock order, not the batch order)
    assert sorted((bytes(r["payload"]), r["repeats"]) for r in rows(pool)) == [(b"a", 2), (b"b", 2)]
