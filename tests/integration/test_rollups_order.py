"""A month of dose events, delivered in any order, in any batches, some of them twice, ends in
the same figures; and a late replay of any one of them updates the rollup."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool

from alarms.missed import sweep_missed_doses
from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from dosewatch.db import rollups
from dosewatch.db.reports import Scope, grouped
from gateway.writer import Inbound, write_batch
from tests.helpers import add_dispenser

START = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
DAYS = 30
TOPIC = "dosewatch/v1/dispensers/DSP-O/events"
# Per slot: what the patient did. (received offset in minutes, event type) or None.
_OUTCOMES = st.sampled_from(
    [(5, "dose_taken"), (90, "dose_taken"), (10, "dose_not_taken"), None, (30, "dose_taken")]
)


def _month(pool: ConnectionPool) -> list[datetime]:
    with pool.connection() as conn:
        conn.execute(
            "TRUNCATE dose_slots, dose_events, dose_event_keys, alarms, alarm_history,"
            " notifications, adherence_daily, adherence_dirty, dispenser_presence,"
            " dispenser_seq, dispenser_seq_gaps, dispenser_supply, schedules,"
            " dispensers, patients RESTART IDENTITY CASCADE"
        )
    add_dispenser(pool, "DSP-O", START, valid_from=date(2026, 10, 31), horizon=timedelta(days=DAYS))
    with pool.connection() as conn:
        rows = conn.execute("SELECT due_at FROM dose_slots ORDER BY due_at").fetchall()
    return [r["due_at"] for r in rows]


def _figures(pool: ConnectionPool, now: datetime) -> dict[str, object]:
    with pool.connection() as conn, conn.transaction():
        rollups.refresh_all(conn, now)
        g = grouped(conn, date(2026, 11, 1), date(2026, 11, 30), Scope())
    return {"total": g.total, "weeks": g.weeks}


def _deliver(pool: ConnectionPool, messages: list[tuple[datetime, bytes]], batch: int) -> None:
    for i in range(0, len(messages), batch):
        with pool.connection() as conn:
            write_batch(conn, [Inbound(TOPIC, body, at) for at, body in messages[i : i + batch]])


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    outcomes=st.lists(_OUTCOMES, min_size=DAYS * 2, max_size=DAYS * 2),
    seed=st.integers(),
    batch=st.integers(1, 25),
    dup_share=st.floats(0, 0.5),
)
def test_the_same_final_figures_whatever_the_order_and_duplication(
    pool: ConnectionPool,
    outcomes: list[tuple[int, str] | None],
    seed: int,
    batch: int,
    dup_share: float,
) -> None:
    end = START + timedelta(days=DAYS + 1)
    dues = _month(pool)
    messages = [
        (
            due + timedelta(minutes=o[0]),
            event(
                "DSP-O",
                n + 1,
                o[1],
                due + timedelta(minutes=o[0]),
                dose_due_at=due,
                event_id=f"ev-{n}",
            ),
        )
        for n, (due, o) in enumerate(zip(dues, outcomes, strict=False))
        if o is not None
    ]
    _deliver(pool, messages, 50)
    sweep_missed_doses(pool, FakeClock(end))
    in_order = _figures(pool, end)

    rnd = random.Random(seed)
    shuffled = messages + rnd.sample(messages, int(len(messages) * dup_share))
    rnd.shuffle(shuffled)
    _month(pool)
    _deliver(pool, shuffled, batch)
    sweep_missed_doses(pool, FakeClock(end))
    assert _figures(pool, end) == in_order


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(slot=st.integers(0, DAYS * 2 - 2), days_late=st.integers(1, 20))
def test_a_late_replay_updates_the_rollup(pool: ConnectionPool, slot: int, days_late: int) -> None:
    end = START + timedelta(days=DAYS + 1)
    dues = _month(pool)
    sweep_missed_doses(pool, FakeClock(end))  # nothing reported: every dose missed
    before = _figures(pool, end)["total"]
    due = dues[slot]
    replayed_at = due + timedelta(days=days_late)
    with pool.connection() as conn:
        write_batch(
            conn,
            [
                Inbound(
                    TOPIC,
                    event("DSP-O", 1, "dose_taken", due + timedelta(minutes=3), dose_due_at=due),
                    replayed_at,
                )
            ],
        )
    after = _figures(pool, replayed_at)["total"]
    assert (after.counts.taken_late, after.counts.missed) == (
        before.counts.taken_late + 1,
        before.counts.missed - 1,
    )
    assert after.expected == before.expected
