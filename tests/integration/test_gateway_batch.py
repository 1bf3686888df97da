# mypy: disable-error-code="call-overload,index"
"""The set-based event path of the writer: same outcomes as one by one, and a poison message
still costs its neighbours nothing (real database, no broker)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from gateway.writer import Inbound, write_batch
from tests.helpers import add_dispenser, alarms_of, slot_states

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
EVENTS = "dosewatch/v1/dispensers/{}/events"


def msg(d: str, payload: bytes, at: datetime) -> Inbound:
    return Inbound(EVENTS.format(d), payload, at)


def test_a_refused_event_falls_back_to_one_by_one_and_only_it_is_quarantined(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-P", clock.now())
    t = clock.now()
    good1 = event("DSP-P", 1, "lid_opened", t, event_id="g1")
    poison = json.loads(event("DSP-P", 2, "error", t, event_id="bad"))
    poison["detail"] = {"code": 7, "message": "nul \u0000 byte"}  # valid JSON; jsonb refuses it
    good2 = event("DSP-P", 3, "dose_taken", t, dose_due_at=DUE, event_id="g2")
    batch = [
        msg("DSP-P", good1, t),
        msg("DSP-P", json.dumps(poison).encode(), t),
        msg("DSP-P", good2, t),
    ]
    with pool.connection() as conn:
        outcomes = write_batch(conn, batch)
        ids = [r["event_id"] for r in conn.execute("SELECT event_id FROM dose_events ORDER BY seq")]
        keys = [
            r["event_id"]
            for r in conn.execute("SELECT event_id FROM dose_event_keys ORDER BY event_id")
        ]
        reasons = [r["reason"] for r in conn.execute("SELECT reason FROM quarantine")]
    assert dict(outcomes) == {"stored": 2, "quarantined": 1}
    assert ids == ["g1", "g2"]
    assert keys == ["g1", "g2"]  # the poison message's claim was rolled back with it
    assert len(reasons) == 1 and reasons[0].startswith("storage error")
    assert slot_states(pool, "DSP-P")[DUE] == "taken"


def test_several_events_for_one_slot_in_one_batch_end_as_one_by_one(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-S", clock.now())
    add_dispenser(pool, "DSP-T", clock.now())
    t = DUE + timedelta(minutes=10)
    not_taken = event("DSP-S", 1, "dose_not_taken", t, dose_due_at=DUE, event_id="n1")
    taken = event("DSP-S", 2, "dose_taken", t, dose_due_at=DUE, event_id="t1")
    batch = [
        msg("DSP-S", not_taken, t),
        msg("DSP-S", taken, t + timedelta(hours=1)),
        msg("DSP-S", taken, t + timedelta(hours=1)),
    ]
    with pool.connection() as conn:
        assert dict(write_batch(conn, batch)) == {"stored": 2, "duplicate": 1}
    # The same events one batch each, for the other dispenser.
    for m in batch:
        body = m.payload.replace(b"DSP-S", b"DSP-T")
        with pool.connection() as conn:
            write_batch(conn, [Inbound(EVENTS.format("DSP-T"), body, m.received_at)])
    assert slot_states(pool, "DSP-S")[DUE] == slot_states(pool, "DSP-T")[DUE] == "taken_late"
    [a_s], [a_t] = alarms_of(pool, "DSP-S"), alarms_of(pool, "DSP-T")
    assert (
        (a_s["state"], a_s["cleared_at"])
        == (a_t["state"], a_t["cleared_at"])
        == ("cleared", t + timedelta(hours=1))
    )
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT dispenser_id, taken_event_id, closed_at FROM dose_slots"
            " WHERE due_at = %s ORDER BY dispenser_id",
            (DUE,),
        ).fetchall()
    assert [(r["taken_event_id"], r["closed_at"]) for r in rows] == [("t1", t)] * 2
