"""Per-dispenser tracking through the writer (real database, no broker): latest status, sequence
gaps, doses left and refills, the status heartbeat, and the applied config version."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event, rfc3339
from dosewatch.clock import FakeClock
from dosewatch.db import presence as presence_sql
from dosewatch.db import status as status_sql
from gateway.writer import Inbound, write_batch
from tests.helpers import add_dispenser

MIN = timedelta(minutes=1)
OFFLINE_AFTER = timedelta(minutes=15)


def ev(d: str, seq: int, type_: str, at: datetime, received: datetime, **kw: object) -> Inbound:
    payload = event(d, seq, type_, at, **kw)  # type: ignore[arg-type]
    return Inbound(f"dosewatch/v1/dispensers/{d}/events", payload, received)


def st(
    d: str, at: datetime, received: datetime, retained: bool = False, **fields: object
) -> Inbound:
    body = {"v": 1, "dispenser_id": d, "at": rfc3339(at), **fields}
    return Inbound(
        f"dosewatch/v1/dispensers/{d}/status", json.dumps(body).encode(), received, retained
    )


def online(d: str, value: bytes, received: datetime, retained: bool = False) -> Inbound:
    return Inbound(f"dosewatch/v1/dispensers/{d}/online", value, received, retained)


def write(pool: ConnectionPool, batch: list[Inbound]) -> dict[str, int]:
    with pool.connection() as conn:
        return dict(write_batch(conn, batch))


def test_latest_status_is_the_newest_by_device_time_whatever_the_order(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-S", clock.now())
    t = clock.now()
    newer = st(
        "DSP-S",
        t,
        t,
        battery_pct=80,
        on_mains=True,
        doses_left=20,
        temperature_c=21.5,
        firmware="3.2.1",
        rssi_dbm=-71,
        schedule_version=1,
    )
    older = st("DSP-S", t - 5 * MIN, t + MIN, battery_pct=90, doses_left=22)
    assert write(pool, [newer, older]) == {"status": 2}
    with pool.connection() as conn:
        latest = status_sql.latest_status(conn, "DSP-S")
        history = conn.execute("SELECT count(*) AS n FROM dispenser_status").fetchone()
    assert latest is not None and history is not None
    assert history["n"] == 2  # type: ignore[call-overload]  # both kept as history
    assert (latest["at"], latest["battery_pct"], latest["on_mains"], latest["doses_left"]) == (
        t,
        80,
        True,
        20,
    )
    assert (latest["temperature_c"], latest["firmware"], latest["rssi_dbm"]) == (21.5, "3.2.1", -71)
    assert latest["schedule_version"] == 1


def test_sequence_gaps_are_recorded_and_filled_by_late_events(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-Q", clock.now())
    t = clock.now()
    write(pool, [ev("DSP-Q", s, "lid_opened", t, t) for s in (1, 2, 3)])
    t2 = clock.advance(MIN)
    write(pool, [ev("DSP-Q", 7, "lid_closed", t2, t2), ev("DSP-Q", 10, "lid_closed", t2, t2)])
    with pool.connection() as conn:
        gaps = [(g["from_seq"], g["to_seq"], g["detected_at"]) for g in status_sql.seq_gaps(conn)]
    assert gaps == [(4, 6, t2), (8, 9, t2)]
    # The device empties its buffer later: 5 and 8 arrive; a duplicate of 7 changes nothing.
    t3 = clock.advance(MIN)
    dup = ev("DSP-Q", 7, "lid_closed", t2, t3)
    write(pool, [ev("DSP-Q", 5, "jam", t, t3), ev("DSP-Q", 8, "jam", t, t3), dup])
    with pool.connection() as conn:
        gaps = [(g["from_seq"], g["to_seq"], g["missing"]) for g in status_sql.seq_gaps(conn)]
    assert gaps == [(4, 4, 1), (6, 6, 1), (9, 9, 1)]


def test_doses_left_and_refills_make_the_refill_worklist(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    patient = add_dispenser(pool, "DSP-R", clock.now())
    add_dispenser(pool, "DSP-FULL", clock.now())
    t = clock.now()
    write(
        pool,
        [
            ev("DSP-R", 1, "dose_taken", t, t, doses_left=3),
            ev("DSP-FULL", 1, "dose_taken", t, t, doses_left=25),
            # An older report arriving later does not win.
            st("DSP-R", t - 10 * MIN, t + MIN, doses_left=4),
        ],
    )
    with pool.connection() as conn:
        work = status_sql.refill_worklist(conn, at_most=5)
    assert [(w["dispenser_id"], w["patient_id"], w["doses_left"]) for w in work] == [
        ("DSP-R", patient, 3)
    ]
    assert work[0]["last_refill_at"] is None

    t2 = clock.advance(timedelta(hours=2))
    refill = ev(
        "DSP-R",
        2,
        "refill",
        t2,
        t2,
        doses_left=31,
        detail={"doses_loaded": 28, "staff_id": "nurse-17"},
    )
    write(pool, [refill, refill])  # delivered twice: one refill
    with pool.connection() as conn:
        assert status_sql.refill_worklist(conn, at_most=5) == []
        rows = status_sql.refills(conn, "DSP-R")
        sup = status_sql.supply(conn, "DSP-R")
    assert [(r["at"], r["doses_loaded"], r["staff_id"], r["doses_left"]) for r in rows] == [
        (t2, 28, "nurse-17", 31)
    ]
    assert sup is not None and (sup["doses_left"], sup["source"]) == (31, "refill")


def test_heartbeat_online_and_offline_are_both_recorded(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-H", clock.now())
    add_dispenser(pool, "DSP-NEVER", clock.now())
    t0 = clock.now()
    write(pool, [st("DSP-H", t0, t0)])
    with pool.connection() as conn:
        assert presence_sql.mark_silent_offline(conn, clock.now(), OFFLINE_AFTER) == []
    # Heartbeats keep it online.
    t1 = clock.advance(10 * MIN)
    write(pool, [st("DSP-H", t1, t1)])
    clock.advance(14 * MIN)
    with pool.connection() as conn:
        assert presence_sql.mark_silent_offline(conn, clock.now(), OFFLINE_AFTER) == []
    t_off = clock.advance(2 * MIN)  # 16 min after the last status
    with pool.connection() as conn:
        assert presence_sql.mark_silent_offline(conn, t_off, OFFLINE_AFTER) == ["DSP-H"]
        assert presence_sql.mark_silent_offline(conn, t_off + MIN, OFFLINE_AFTER) == []
    # On a gateway restart, the broker hands over the retained '1': old news, it stays offline.
    write(pool, [online("DSP-H", b"1", clock.advance(MIN), retained=True)])
    with pool.connection() as conn:
        row = presence_sql.get_presence(conn, "DSP-H")
    assert row is not None and row["online"] is False
    # A retained status is no heartbeat either; a live one is.
    write(pool, [st("DSP-H", t1, clock.advance(MIN), retained=True)])
    t_back = clock.advance(MIN)
    write(pool, [st("DSP-H", t_back, t_back)])
    with pool.connection() as conn:
        hist = presence_sql.online_history(conn, "DSP-H")
        row = presence_sql.get_presence(conn, "DSP-H")
        never = presence_sql.get_presence(conn, "DSP-NEVER")
    assert [(h["at"], h["online"], h["source"]) for h in hist] == [
        (t_back, True, "heartbeat"),
        (t_off, False, "heartbeat_timeout"),
        (t0, True, "heartbeat"),
    ]
    assert row is not None and (row["online"], row["last_status_at"]) == (True, t_back)
    assert never is None  # never heard from: not marked anything


def test_online_topic_then_silence_counts_from_the_connect(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-T", clock.now())
    t0 = clock.now()
    write(pool, [online("DSP-T", b"1", t0)])
    with pool.connection() as conn:
        assert presence_sql.mark_silent_offline(conn, t0 + 14 * MIN, OFFLINE_AFTER) == []
        assert presence_sql.mark_silent_offline(conn, t0 + 16 * MIN, OFFLINE_AFTER) == ["DSP-T"]
        hist = presence_sql.online_history(conn, "DSP-T")
    assert [(h["online"], h["source"]) for h in hist] == [
        (False, "heartbeat_timeout"),
        (True, "lwt_or_topic"),
    ]


def test_config_applied_is_recorded(pool: ConnectionPool, clock: FakeClock) -> None:
    add_dispenser(pool, "DSP-C", clock.now())
    t = clock.now()
    write(pool, [ev("DSP-C", 1, "config_applied", t, t, detail={"version": 1})])
    with pool.connection() as conn:
        state = status_sql.config_state(conn, "DSP-C")
    assert state is not None
    assert (state["applied_version"], state["applied_at"], state["applied_source"]) == (
        1,
        t,
        "config_applied",
    )
