"""Live push: an alarm written by any connection reaches every web process's listener."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from dashboards.stream import Hub
from dosewatch.db.notices import CHANNEL, alarm_notices
from tests.conftest import T0
from tests.helpers import add_dispenser


def test_a_new_alarm_reaches_every_process_listener_within_a_second(
    pool: ConnectionPool, database_url: str
) -> None:
    patient = add_dispenser(pool, "DSP-S", T0)

    async def scenario() -> list[tuple[dict[str, object], float]]:
        hubs = [Hub(database_url), Hub(database_url)]  # two web processes
        queues = [h.subscribe() for h in hubs]
        for h in hubs:
            await asyncio.wait_for(h.listening.wait(), 5)
        for q in queues:
            assert (await asyncio.wait_for(q.get(), 1)) == {"type": "reload"}
        start = time.monotonic()
        await asyncio.to_thread(_open_alarm, pool, patient)
        got = []
        for q in queues:
            msg = await asyncio.wait_for(q.get(), 1)
            assert msg is not None
            got.append((msg, time.monotonic() - start))
        for h in hubs:
            await h.close()
        return got

    # In a thread of its own: another test's Playwright may own this thread's event loop.
    with ThreadPoolExecutor(1) as executor:
        got = executor.submit(asyncio.run, scenario()).result()
    for msg, elapsed in got:
        assert msg["type"] == "alarm" and msg["op"] == "insert" and msg["state"] == "open"
        assert elapsed < 1.0


def _open_alarm(pool: ConnectionPool, patient: int) -> None:
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO alarms (kind, dispenser_id, patient_id, priority, opened_at)"
            " VALUES ('help_button', 'DSP-S', %s, 'high', %s)",
            (patient, T0),
        )


def test_a_statement_of_many_alarms_is_announced_a_hundred_per_notice_and_unpacked_per_alarm(
    pool: ConnectionPool, database_url: str
) -> None:
    """Migration 0024: one notice per team and hundred alarms, each under NOTIFY's 8,000 bytes
    even with 19-digit ids and the longest state; every listener still gets one per alarm."""
    patient = add_dispenser(pool, "DSP-S", T0)
    with pool.connection() as conn:
        north, south = (
            conn.execute(
                "INSERT INTO teams (name, created_at) VALUES (%s, %s) RETURNING id", (name, T0)
            ).fetchone()["id"]
            for name in ("Norr", "Söder")
        )
        conn.execute(
            "INSERT INTO dispensers (id, patient_id) SELECT 'DSP-N' || g, %s"
            " FROM generate_series(1, 253) g",
            (patient,),
        )
    big = 1_000_000_000_000_000_000  # 19 digits
    raw = psycopg.connect(database_url, autocommit=True)
    raw.execute(f"LISTEN {CHANNEL}")
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO alarms (id, kind, dispenser_id, patient_id, priority, team_id,"
            " acknowledged_at, opened_at)"
            " SELECT %s + g, 'dispenser_offline', 'DSP-N' || g, %s, 'medium',"
            " CASE WHEN g <= 250 THEN %s ELSE %s END, %s, %s"
            " FROM generate_series(1, 253) g",
            (big, patient, north, south, T0, T0),
        )
    notes = list(raw.notifies(timeout=1.0, stop_after=4))
    raw.close()
    assert all(len(n.payload.encode()) < 8000 for n in notes)
    unpacked = [a for n in notes for a in alarm_notices(n.payload)]
    assert sorted(len(alarm_notices(n.payload)) for n in notes) == [3, 50, 100, 100]
    assert sorted(a["id"] for a in unpacked) == [big + g for g in range(1, 254)]
    assert {a["team_id"] for a in unpacked if a["id"] - big <= 250} == {north}
    assert {a["team_id"] for a in unpacked if a["id"] - big > 250} == {south}
    assert {(a["op"], a["state"], a["priority"]) for a in unpacked} == {
        ("insert", "acknowledged", "medium")
    }


def test_a_payload_that_is_no_alarm_notice_is_refused_clearly() -> None:
    for payload in (
        "[]",
        '{"op": "insert"}',
        '{"op": "insert", "team_id": 1, "at": 0, "alarms": [{"id": 1}]}',
        "not json",
    ):
        with pytest.raises(ValueError):
            alarm_notices(payload)
