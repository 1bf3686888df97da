"""Live push: an alarm written by any connection reaches every web process's listener."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from psycopg_pool import ConnectionPool

from dashboards.stream import Hub
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
