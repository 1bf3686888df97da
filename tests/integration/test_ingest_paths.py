# mypy: disable-error-code="call-overload,index"
"""The set-based write and the per-message fallback leave identical rows, for random batches.

Both run the one ingest plan (``dosewatch.domain.ingest``); this holds them to it on the real
database: events of every type, repeats within the batch and of what is stored, unknown
dispensers, receive times out of order, legacy events without ``dose_due_at``, ``dose_not_taken``
(which opens an alarm), statuses, ``online`` and garbage. Each path runs in a transaction rolled
back afterwards, from the same stored starting point, and every table is compared (serial ids
and random acknowledgement codes aside: sequences are not rolled back).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event, rfc3339
from dosewatch.clock import FakeClock
from dosewatch.domain.ingest import Inbound, Outcome
from dosewatch.domain.protocol import DOSE_EVENT_TYPES, EventType
from gateway.decode import decode
from gateway.writer import store_batch, store_one_by_one
from tests.helpers import add_dispenser

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm; 20:00 is DUE + 12 h
DUES = [DUE + timedelta(hours=12 * i) for i in range(3)]
DISPENSERS = ["DSP-P1", "DSP-P2", "DSP-GHOST"]  # the last is never registered
# Fields that differ between two runs from the same state for reasons other than the plan
# (serial ids and the ids that point at them, random ack codes, and the rollup queue's
# wall-clock stamp of when a day changed).
_UNSTABLE = ("id", "alarm_id", "policy_id", "ack_code", "marked_at")


def _topic(d: str, kind: str) -> str:
    return f"dosewatch/v1/dispensers/{d}/{kind}"


@st.composite
def messages(draw: st.DrawFn) -> Inbound:
    d = draw(st.sampled_from(DISPENSERS))
    # Receive times around the windows' ends (45 min), in any order, often equal.
    received_at = draw(st.sampled_from(DUES)) + timedelta(
        minutes=draw(st.sampled_from([-30, 0, 30, 44, 45, 46, 90, 300]))
    )
    kind = draw(st.sampled_from(["event"] * 4 + ["status"] * 2 + ["online", "garbage"]))
    if kind == "status":
        at = DUE + timedelta(minutes=draw(st.integers(0, 1)))  # device times that tie
        body = {
            "v": 1,
            "dispenser_id": d,
            "at": rfc3339(at),
            "battery_pct": draw(st.integers(0, 100)),
        }
        left = draw(st.none() | st.integers(0, 60))
        if left is not None:
            body["doses_left"] = left
        return Inbound(_topic(d, "status"), json.dumps(body).encode(), received_at)
    if kind == "online":
        return Inbound(
            _topic(d, "online"),
            draw(st.sampled_from([b"0", b"1"])),
            received_at,
            draw(st.booleans()),
        )
    if kind == "garbage":
        return Inbound(
            _topic(d, "events"), draw(st.sampled_from([b"{", b"[]", b"\xff"])), received_at
        )
    # Every type, dose events more often: several per slot make the slot change twice.
    type_ = draw(st.sampled_from([*EventType, *sorted(DOSE_EVENT_TYPES) * 3]))
    due = draw(st.sampled_from(DUES))
    occurred_at = due + timedelta(minutes=draw(st.integers(-240, 240)))
    legacy = draw(st.booleans())  # older firmware: matched by the nearest due time
    odd_due = draw(st.booleans()) and not legacy  # a due time that is no slot's
    detail: dict[str, Any] | None = None
    if type_ is EventType.REFILL:
        detail = {"doses_loaded": draw(st.integers(1, 60)), "staff_id": "nurse-1"}
    elif type_ is EventType.CONFIG_APPLIED:
        detail = {"version": draw(st.integers(1, 3))}
    payload = event(
        d,
        draw(st.integers(1, 30)),
        type_.value,
        occurred_at,
        dose_due_at=None if legacy else (due + timedelta(minutes=17) if odd_due else due),
        doses_left=draw(st.none() | st.integers(0, 60)),
        detail=detail,
        event_id=f"e{draw(st.integers(0, 7))}",  # few ids: repeats in the batch and stored
    )
    return Inbound(_topic(d, "events"), payload, received_at)


def _rows(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    tables = [
        r["tablename"]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    out = {}
    for t in tables:
        rows = conn.execute(
            f"SELECT (to_jsonb(t) - %s::text[])::text AS r FROM {t} t",  # noqa: S608 (catalogue)
            (list(_UNSTABLE),),
        ).fetchall()
        out[t] = sorted(r["r"] for r in rows)
    return out


def _run(conn: psycopg.Connection[Any], path: Any, batch: list[Inbound]) -> tuple[Any, Any]:
    decoded = [(m, decode(m.topic, m.payload)) for m in batch]
    with conn.transaction(force_rollback=True):
        results = path(conn, decoded)
        return results, _rows(conn)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stored=st.lists(messages(), max_size=6),
    batch=st.lists(messages(), min_size=3, max_size=30),
)
def test_both_paths_leave_identical_rows(
    pool: ConnectionPool,
    conn: psycopg.Connection[Any],
    clock: FakeClock,
    stored: list[Inbound],
    batch: list[Inbound],
) -> None:
    if not _registered(conn):
        for d in DISPENSERS[:2]:
            add_dispenser(pool, d, clock.now())
    with conn.transaction(force_rollback=True):
        # Some of the batch's events may already be stored (a redelivery after a crash).
        store_batch(conn, [(m, decode(m.topic, m.payload)) for m in stored])
        set_based, rows_a = _run(conn, store_batch, batch)
        one_by_one, rows_b = _run(conn, store_one_by_one, batch)
    assert set_based == one_by_one
    assert rows_a == rows_b
    assert len(set_based) == len(batch)


def test_the_random_batches_reach_every_outcome_and_slot_change(
    pool: ConnectionPool, conn: psycopg.Connection[Any], clock: FakeClock
) -> None:
    """The strategy is not toothless: a fixed batch from it opens and clears an alarm."""
    for d in DISPENSERS[:2]:
        add_dispenser(pool, d, clock.now())
    late = DUE + timedelta(hours=2)
    batch = [
        Inbound(
            _topic("DSP-P1", "events"),
            event("DSP-P1", 1, "dose_not_taken", DUE, dose_due_at=DUE, event_id="n"),
            DUE,
        ),
        Inbound(
            _topic("DSP-P1", "events"), event("DSP-P1", 2, "dose_taken", DUE, event_id="t"), late
        ),
        Inbound(
            _topic("DSP-P1", "events"), event("DSP-P1", 2, "dose_taken", DUE, event_id="t"), late
        ),
        Inbound(_topic("DSP-GHOST", "online"), b"1", DUE),
        Inbound(
            _topic("DSP-P2", "status"),
            json.dumps({"v": 1, "dispenser_id": "DSP-P2", "at": rfc3339(DUE)}).encode(),
            DUE,
        ),
    ]
    results, rows = _run(conn, store_batch, batch)
    assert [r.outcome for r in results] == [
        Outcome.STORED,
        Outcome.STORED,
        Outcome.DUPLICATE,
        Outcome.QUARANTINED,
        Outcome.STATUS,
    ]
    [alarm] = [json.loads(r) for r in rows["alarms"]]
    assert alarm["cleared_at"] is not None
    assert any('"taken_late"' in r for r in rows["dose_slots"])
    assert _run(conn, store_one_by_one, batch) == (results, rows)


def _registered(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT count(*) AS n FROM dispensers").fetchone()
    return row is not None and row["n"] == 2
