"""The missed-dose sweep against the real database: exactly one alarm per missed slot."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from alarms.jobs import plan_slots, sweep_missed_doses
from dosewatch.clock import FakeClock
from dosewatch.db import opening as opening_sql
from dosewatch.db.pool import make_pool
from tests.helpers import add_dispenser, alarms_of, slot_states

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm


def test_nothing_happens_while_the_window_is_open(pool: ConnectionPool, clock: FakeClock) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    clock.set(DUE + timedelta(minutes=44, seconds=59))
    assert sweep_missed_doses(pool, clock) == []
    assert slot_states(pool, "DSP-A")[DUE] == "pending"


def test_closed_window_opens_one_alarm(pool: ConnectionPool, clock: FakeClock) -> None:
    patient_id = add_dispenser(pool, "DSP-A", clock.now())
    clock.set(DUE + timedelta(minutes=45))
    opened = sweep_missed_doses(pool, clock)
    assert len(opened) == 1
    assert slot_states(pool, "DSP-A")[DUE] == "missed"
    [alarm] = alarms_of(pool, "DSP-A")
    assert (alarm["kind"], alarm["state"], alarm["patient_id"]) == (
        "missed_dose",
        "open",
        patient_id,
    )
    assert alarm["slot_due_at"] == DUE and alarm["opened_at"] == clock.now()
    # The next sweep, and the one after, find nothing more to do.
    clock.advance(timedelta(minutes=5))
    assert sweep_missed_doses(pool, clock) == []
    assert len(alarms_of(pool, "DSP-A")) == 1


def test_two_processes_sweeping_at_once_open_exactly_one_alarm_per_slot(
    pool: ConnectionPool, database_url: str, clock: FakeClock
) -> None:
    """Many dispensers, many racing sweeps on separate connections: one alarm per missed slot."""
    for i in range(40):
        add_dispenser(pool, f"DSP-{i:03d}", clock.now())
    clock.set(DUE + timedelta(hours=1))
    pools = [make_pool(database_url, max_size=2, name=f"sweeper-{i}") for i in range(4)]
    barrier = threading.Barrier(len(pools))
    results: list[list[int]] = [[] for _ in pools]

    def sweeper(i: int) -> None:
        barrier.wait()
        for _ in range(5):
            results[i] += sweep_missed_doses(pools[i], clock, batch=7)

    threads = [threading.Thread(target=sweeper, args=(i,)) for i in range(len(pools))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in pools:
        p.close()
    all_opened = [a for r in results for a in r]
    assert len(all_opened) == len(set(all_opened)) == 40
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) AS n, count(DISTINCT slot_id) AS slots FROM alarms"
        ).fetchone()
        history = conn.execute(
            "SELECT count(*) AS n FROM alarm_history WHERE action = 'opened'"
        ).fetchone()
    assert row is not None and history is not None
    assert row["n"] == row["slots"] == 40
    assert history["n"] == 40


def test_the_unique_index_refuses_a_second_alarm_for_a_slot(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    clock.set(DUE + timedelta(hours=1))
    sweep_missed_doses(pool, clock)
    with pool.connection() as conn:
        cur = conn.execute(
            "INSERT INTO alarms (kind, dispenser_id, patient_id, slot_id, opened_at)"
            " SELECT kind, dispenser_id, patient_id, slot_id, now() FROM alarms"
            " ON CONFLICT (slot_id) WHERE slot_id IS NOT NULL DO NOTHING"
        )
        assert cur.rowcount == 0


def test_planning_keeps_a_rolling_horizon_idempotently(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now(), horizon=timedelta(hours=24))
    before = slot_states(pool, "DSP-A")
    assert plan_slots(pool, clock, timedelta(hours=24)) == 0  # nothing new
    clock.advance(timedelta(days=2))
    assert plan_slots(pool, clock, timedelta(hours=48)) > 0
    after = slot_states(pool, "DSP-A")
    assert set(before) < set(after)
    assert plan_slots(pool, clock, timedelta(hours=48)) == 0
    # Two per local day, 08:00 and 20:00 Stockholm (07:00 and 19:00 UTC in winter).
    assert {d.astimezone(UTC).hour for d in after} == {7, 19}


@pytest.mark.parametrize("connections", [1, 3])
def test_one_sweep_drains_a_backlog_over_the_connections_it_is_given(
    pool: ConnectionPool, clock: FakeClock, connections: int
) -> None:
    """DOSEWATCH_SWEEP_CONNECTIONS: a backlog of many batches is drained by one sweep, whether
    over one connection or several, each slot opening its one alarm."""
    for i in range(30):
        add_dispenser(pool, f"DSP-{i:03d}", clock.now())
    clock.set(DUE + timedelta(hours=1))
    opened = sweep_missed_doses(pool, clock, batch=4, parallel=connections)
    assert len(opened) == len(set(opened)) == 30
    assert sweep_missed_doses(pool, clock, batch=4, parallel=connections) == []


def test_drains_share_the_slots_of_all_alarm_processes(
    pool: ConnectionPool, clock: FakeClock, database_url: str
) -> None:
    """With every drain slot held elsewhere (other alarm processes draining), a sweep closes its
    first batch only and leaves the backlog to them; once they let go, one sweep drains it and
    lets its own slots go too."""
    for i in range(30):
        add_dispenser(pool, f"DSP-{i:03d}", clock.now())
    clock.set(DUE + timedelta(hours=1))

    def hold_both() -> tuple[list[psycopg.Connection[Any]], list[int | None]]:
        # Advisory locks are re-entrant within a session: one connection per slot.
        conns = [psycopg.connect(database_url, autocommit=True, row_factory=dict_row)]
        conns.append(psycopg.connect(database_url, autocommit=True, row_factory=dict_row))
        return conns, [opening_sql.take_drain_slot(c, 2) for c in conns]

    conns, held = hold_both()
    assert held == [0, 1]
    assert len(sweep_missed_doses(pool, clock, batch=4, parallel=2)) == 4
    for c in conns:
        c.close()  # a process that goes away lets its slot go with its connection
    assert len(sweep_missed_doses(pool, clock, batch=4, parallel=2)) == 26
    conns, held = hold_both()
    assert held == [0, 1]
    for c in conns:
        c.close()
