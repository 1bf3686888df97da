"""bench/history: how long ``sim history`` takes for a fleet, and whether a day costs the same
at the end of the run as at its start.

    .venv/bin/python -m bench.history [--fleet umea] [--days 30] [--storage auto|postgresql]

One run of :func:`service.sim_history.run_history` into a private database on the machine's
PostgreSQL (DOSEWATCH_BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres
as the admin URL), exactly as ``dosewatch sim history`` and the demo make it. Reported: the wall
time, and the seconds per simulated day for each fifth of the run. The first fifth is the
baseline in the same run: a cost that grows with the data (a query reading the whole history
at every sweep) shows as later fifths slower than the first.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import uuid
from datetime import UTC, date, datetime

import psycopg
from psycopg import sql

from dispenser_sim.profiles import load_fleet
from dosewatch.db.migrate import migrate
from dosewatch.db.pool import make_pool
from service.sim_history import History

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fleet", default="umea")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--storage", choices=("auto", "postgresql"), default="auto")
    args = ap.parse_args()
    admin = os.environ.get(
        "DOSEWATCH_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"dosewatch_bench_history_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    try:
        mode = migrate(url, timescale=args.storage == "auto")
        pool = make_pool(url, max_size=10, name="bench-history")
        fleet = load_fleet(args.fleet)
        days_seen: dict[date, float] = {}

        def on_tick(t: datetime) -> None:
            days_seen.setdefault(t.date(), time.monotonic())

        began = time.monotonic()
        with History(pool, fleet, args.days, now=NOW, on_tick=on_tick) as run:
            set_up = time.monotonic() - began
            run.run_until(NOW)
            run.finish()
        wall = time.monotonic() - began
        pool.close()
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    starts = sorted(days_seen.items())
    fifth = max(1, len(starts) // 5)
    print(f"bench/history: fleet {fleet.name} ({len(fleet.dispensers)} dispensers),"
          f" {args.days} days,"
          f" storage {mode}, {os.cpu_count()} cores, Python {platform.python_version()},"
          f" load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"  wall {wall:.1f} s (set-up {set_up:.1f} s), {run.engine.sent:,} messages")
    for i in range(0, len(starts) - fifth, fifth):
        (d0, t0), (d1, t1) = starts[i], starts[i + fifth]
        print(f"  {d0} to {d1}: {(t1 - t0) / (d1 - d0).days:.2f} s per simulated day")


if __name__ == "__main__":
    main()
