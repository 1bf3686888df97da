"""Presence SQL and the writer's use of it, against the real database (no broker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event, rfc3339
from dosewatch.clock import FakeClock
from dosewatch.db import presence as presence_sql
from dosewatch.domain.device_clock import KEEP
from gateway.writer import Inbound, write_batch
from tests.helpers import add_dispenser

SECOND = timedelta(seconds=1)


def events_topic(dispenser_id: str) -> str:
    return f"dosewatch/v1/dispensers/{dispenser_id}/events"


def status_inbound(dispenser_id: str, at: datetime, received_at: datetime, **kw: bool) -> Inbound:
    body = {"v": 1, "dispenser_id": dispenser_id, "at": rfc3339(at)}
    return Inbound(
        f"dosewatch/v1/dispensers/{dispenser_id}/status",
        json.dumps(body).encode(),
        received_at,
        **kw,
    )


def test_online_history_grows_only_on_a_change(pool: ConnectionPool, clock: FakeClock) -> None:
    add_dispenser(pool, "DSP-P", clock.now())
    t = clock.now()
    with pool.connection() as conn:
        assert presence_sql.record_online(conn, "DSP-P", True, t)  # NULL → true is a change
        assert not presence_sql.record_online(conn, "DSP-P", True, t + 60 * SECOND)
        assert presence_sql.record_online(conn, "DSP-P", False, t + 120 * SECOND)
        # Received before the stored change (two gateways racing): the newer value stands.
        assert not presence_sql.record_online(conn, "DSP-P", True, t + 90 * SECOND)
        row = presence_sql.get_presence(conn, "DSP-P")
        hist = presence_sql.online_history(conn, "DSP-P")
    assert row is not None
    assert (row["online"], row["online_changed_at"]) == (False, t + 120 * SECOND)
    assert row["last_seen_at"] is None  # `online` alone records no sign of life
    assert [(h["at"], h["online"]) for h in hist] == [(t + 120 * SECOND, False), (t, True)]


def test_record_seen_keeps_the_newest_samples_and_never_moves_last_seen_back(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-P", clock.now())
    add_dispenser(pool, "DSP-Q", clock.now())
    t = clock.now()
    with pool.connection() as conn:
        presence_sql.record_seen(
            conn, {"DSP-P": (t, [400.0] + [10.0] * (KEEP - 1)), "DSP-Q": (t, [])}, t
        )
        row = presence_sql.get_presence(conn, "DSP-P")
        assert row is not None
        assert (row["clock_offset_s"], row["clock_flagged"]) == (400.0, True)

        # One newer sample pushes the 400 out of the window: the estimate follows.
        presence_sql.record_seen(conn, {"DSP-P": (t - 60 * SECOND, [5.0])}, t + SECOND)
        row = presence_sql.get_presence(conn, "DSP-P")
        other = presence_sql.get_presence(conn, "DSP-Q")
    assert row is not None and other is not None
    assert row["clock_samples"] == [10.0] * (KEEP - 1) + [5.0]
    assert (row["clock_offset_s"], row["clock_flagged"]) == (10.0, False)
    assert row["last_seen_at"] == t  # a late-committed older batch does not move it back
    assert row["updated_at"] == t + SECOND
    assert (other["last_seen_at"], other["clock_offset_s"], other["clock_samples"]) == (t, None, [])


def test_a_retained_status_is_stored_but_is_not_a_sign_of_life(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-P", clock.now())
    old = clock.now() - timedelta(hours=3)
    with pool.connection() as conn:
        outcomes = write_batch(conn, [status_inbound("DSP-P", old, clock.now(), retained=True)])
        assert outcomes == {"status": 1}
        assert presence_sql.get_presence(conn, "DSP-P") is None


@pytest.fixture
def presence_refused(pool: ConnectionPool) -> Iterator[None]:
    """A real database refusal on dispenser_presence (a trigger), for one test."""
    with pool.connection() as conn:
        conn.execute(
            "CREATE FUNCTION test_refuse_presence() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'presence refused by test'; END$$"
        )
        conn.execute(
            "CREATE TRIGGER test_refuse_presence BEFORE INSERT OR UPDATE ON dispenser_presence"
            " FOR EACH ROW EXECUTE FUNCTION test_refuse_presence()"
        )
    try:
        yield
    finally:
        with pool.connection() as conn:
            conn.execute("DROP TRIGGER test_refuse_presence ON dispenser_presence")
            conn.execute("DROP FUNCTION test_refuse_presence()")


def test_a_failing_presence_update_costs_the_batch_nothing(
    pool: ConnectionPool,
    clock: FakeClock,
    presence_refused: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_dispenser(pool, "DSP-P", clock.now())
    now = clock.now()
    batch = [
        Inbound(events_topic("DSP-P"), event("DSP-P", 1, "lid_opened", now), now),
        status_inbound("DSP-P", now, now),
    ]
    with pool.connection() as conn:
        assert write_batch(conn, batch) == {"stored": 1, "status": 1}
    with pool.connection() as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM dose_events) AS events,"
            " (SELECT count(*) FROM dispenser_status) AS statuses,"
            " (SELECT count(*) FROM dispenser_presence) AS presence"
        ).fetchone()
    assert counts == {"events": 1, "statuses": 1, "presence": 0}
    assert "could not update presence" in caplog.text
