"""bench/alarms: the 08:00 rush of a national fleet.

100,000 dose slots whose windows close within the same minute, nothing taken. The real alarm
jobs (missed-dose sweep, escalation sweep) run as the scheduler runs them, on the system clock:
every ``--interval`` seconds, and the sweep also at each window's close (``--poll-only``: not).
Measured: the time from the last window closing until every alarm exists and every first
notification is in the outbox, and per alarm the delay from its window closing to the commit
of the transaction that opened it with its first notification (p50/p99; a listener receives
each alarm's NOTIFY on commit, as a console would). Next to it, in the same database and run,
the time of a bare ``INSERT … SELECT`` of the same 100,000 rows into a copy of the alarms table
without trigger, history or outbox: the ratio is the figure.

Run: ``.venv/bin/python -m bench.alarms [--slots N] [--burst] [--workers N] [--connections N]
[--poll-only] [--append BENCHMARKS.md]``.
It uses DOSEWATCH_DATABASE_URL's server (default: the local PostgreSQL) in a private database.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alarms.escalation import run_escalations
from alarms.missed import Sweeper
from dosewatch.clock import SystemClock
from dosewatch.db.migrate import migrate
from dosewatch.db.notices import CHANNEL, alarm_notices
from dosewatch.db.pool import make_pool
from service.runtime import settle_heap

ADMIN = os.environ.get("DOSEWATCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _db_url(name: str) -> str:
    base, _, _ = ADMIN.rpartition("/")
    return f"{base}/{name}"


def setup(url: str, slots: int, first_close: datetime, spread_s: float) -> None:
    """Teams on duty, one patient and dispenser per slot, slots closing over ``spread_s``."""
    with psycopg.connect(url, autocommit=True) as conn:
        now = datetime.now(UTC)
        conn.execute(
            "INSERT INTO teams (name, created_at) SELECT 'team ' || g, %s"
            " FROM generate_series(1, 100) g",
            (now,),
        )
        conn.execute(
            "INSERT INTO nurses (team_id, name, phone, language, created_at)"
            " SELECT t.id, 'nurse ' || t.id || '-' || r, '+4670' || lpad((t.id * 10 + r)::text, 7,"
            " '0'), 'sv', %s FROM teams t, generate_series(1, 3) r",
            (now,),
        )
        conn.execute(
            "INSERT INTO shifts (team_id, nurse_id, starts_at, ends_at, role)"
            " SELECT n.team_id, n.id, %s, %s, (ARRAY['primary','backup','lead'])["
            " 1 + (n.id - 1) %% 3] FROM nurses n",
            (now - timedelta(hours=4), now + timedelta(hours=8)),
        )
        conn.execute(
            "INSERT INTO patients (name, phone, team_id) SELECT 'Patient ' || g, '+46900000000',"
            " 1 + g %% 100 FROM generate_series(1, %s) g",
            (slots,),
        )
        conn.execute(
            "INSERT INTO dispensers (id, patient_id) SELECT 'DSP-' || id, id FROM patients"
        )
        # Each dispenser's schedule, as in production: closing a slot marks its patient's day
        # for the adherence rollup (the statement trigger joins the slot to its schedule's
        # time zone). Before 2026-12-07 the bench had no schedule rows, so that mark cost nothing.
        conn.execute(
            "INSERT INTO schedules (dispenser_id, version, timezone, doses, valid_from,"
            " created_at, effective_from) SELECT id, 1, 'Europe/Stockholm', %s, %s::date, %s, %s"
            " FROM dispensers",
            (
                Jsonb([{"time": "08:00", "label": "morning", "window_min": 45}]),
                now - timedelta(days=1),
                now,
                now - timedelta(days=1),
            ),
        )
        conn.execute(
            "INSERT INTO dose_slots (dispenser_id, due_at, window_end, schedule_version,"
            " local_time) SELECT 'DSP-' || g, w - interval '45 minutes', w, 1, '08:00'"
            " FROM (SELECT g, %s::timestamptz + (g %% 1000) * %s * interval '1 second' / 1000"
            " AS w FROM generate_series(1, %s) g) x",
            (first_close, spread_s, slots),
        )
        conn.execute("ANALYZE")


def bare_baseline(url: str) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE alarms_bare (LIKE alarms INCLUDING DEFAULTS)")
        t0 = time.perf_counter()
        conn.execute(
            "INSERT INTO alarms_bare (kind, dispenser_id, patient_id, slot_id, slot_due_at,"
            " priority, opened_at) SELECT 'missed_dose', s.dispenser_id, d.patient_id, s.id,"
            " s.due_at, 'medium', now() FROM dose_slots s JOIN dispensers d"
            " ON d.id = s.dispenser_id"
        )
        return time.perf_counter() - t0


def alarm_process(
    url: str,
    interval: float,
    wake: bool,
    connections: int,
    stop: Any,
    finished: Any,
    leave: Any,
    cpu: Any,
) -> None:
    """One alarm process, running the jobs as start_scheduler runs them: the sweep at each
    window's close (unless --poll-only) and, as the guarantee, with the escalations every
    interval. Its connections stay open until the parent has read their CPU time; its own CPU
    time counts from here (not the interpreter's start-up)."""
    pool = make_pool(url, max_size=4, name="bench-alarm-process")
    clock = SystemClock()
    settle_heap()  # as start_alarm_jobs does
    cpu_start = time.process_time()
    sweeper = Sweeper(pool, clock, max_wait_s=interval, parallel=connections)
    if wake:
        sweeper.start()
    while not stop.is_set():
        tick = time.monotonic()
        sweeper.sweep()
        run_escalations(pool, clock)
        stop.wait(max(0.0, interval - (time.monotonic() - tick)))
    if wake:
        sweeper.stop()
    cpu.value = time.process_time() - cpu_start
    finished.set()
    leave.wait()
    pool.close()


def run_pipeline(
    url: str,
    slots: int,
    last_close: datetime,
    interval: float,
    workers: int,
    wake: bool,
    connections: int = 2,
) -> dict[str, float]:
    """``workers`` alarm processes (real processes: each has its own interpreter lock, as in
    production); this process only listens and measures."""
    spawn = multiprocessing.get_context("spawn")
    stop, leave = spawn.Event(), spawn.Event()
    finished = [spawn.Event() for _ in range(workers)]
    cpus = [spawn.Value("d", 0.0) for _ in range(workers)]
    procs = [
        spawn.Process(
            target=alarm_process,
            args=(url, interval, wake, connections, stop, done, leave, cpu),
        )
        for done, cpu in zip(finished, cpus, strict=True)
    ]
    pool = make_pool(url, max_size=2, name="bench-alarms")

    # Each alarm counts as done when its transaction has committed: the moment a console would
    # hear of it (the alarms trigger notifies on commit). Listening costs the database nothing,
    # where polling a count would take CPU from the pipeline being measured.
    # Each notice announces up to a hundred of one team's new alarms (migration 0024).
    seen: dict[int, float] = {}
    listener = psycopg.connect(url, autocommit=True)
    listener.execute(f"LISTEN {CHANNEL}")

    def listen() -> None:
        deadline = time.monotonic() + 600
        while len(seen) < slots and time.monotonic() < deadline:
            for note in listener.notifies(timeout=0.5):
                at = time.time()
                for alarm in alarm_notices(note.payload):
                    if alarm["op"] == "insert":
                        seen.setdefault(alarm["id"], at)

    listening = threading.Thread(target=listen)
    listening.start()
    for p in procs:
        p.start()
    try:
        listening.join()
        stop.set()
        for done in finished:
            done.wait(60)
        with pool.connection() as conn:
            backends = [
                r["pid"]
                for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                )
            ]
            cpu_db = _backend_cpu(backends)  # before the checks below add their own
            cpu_alarm_process = sum(cpu.value for cpu in cpus)
            window_end = {
                r["id"]: r["w"]
                for r in conn.execute(
                    "SELECT a.id, extract(epoch FROM s.window_end) AS w FROM alarms a"
                    " JOIN dose_slots s ON s.id = a.slot_id"
                )
            }
            # As earlier versions of this bench measured it: to the first notification row's
            # created_at (its transaction's start), which leaves out the time to commit.
            created = [
                float(r["d"])
                for r in conn.execute(
                    "SELECT extract(epoch FROM min(n.created_at) - s.window_end) AS d"
                    " FROM notifications n JOIN alarms a ON a.id = n.alarm_id"
                    " JOIN dose_slots s ON s.id = a.slot_id GROUP BY a.id, s.window_end"
                )
            ]
            # Every alarm's first notification was written by the transaction that opened it.
            apart = conn.execute(
                "SELECT count(*) AS n FROM alarms a LEFT JOIN notifications n"
                " ON n.alarm_id = a.id AND n.step_index = 0"
                " WHERE n.id IS NULL OR a.xmin::text <> n.xmin::text"
            ).fetchone()
    finally:
        stop.set()
        leave.set()
        for p in procs:
            p.join(10)
        pool.close()
        listener.close()
    assert len(window_end) == slots == len(seen), (len(window_end), len(seen))
    assert apart is not None and apart["n"] == 0, f"{apart} alarms without a first notification"
    done_at = datetime.fromtimestamp(max(seen.values()), UTC)
    delays = [seen[i] - float(w) for i, w in window_end.items()]
    delays_f = sorted(float(d) for d in delays)
    return {
        "all_done_s": (done_at - last_close).total_seconds(),
        "p50_s": statistics.median(delays_f),
        "p99_s": delays_f[int(len(delays_f) * 0.99) - 1],
        "max_s": delays_f[-1],
        "created_p50_s": statistics.median(created),
        "created_p99_s": sorted(created)[int(len(created) * 0.99) - 1],
        "cpu_alarm_us": 1e6 * cpu_alarm_process / slots,
        "cpu_db_us": -1.0 if cpu_db is None else 1e6 * cpu_db / slots,
    }


def _backend_cpu(pids: list[int]) -> float | None:
    """CPU seconds the database backends of this run used (the server on this machine only).

    Unlike wall time, CPU time hardly depends on what else the machine is doing, so it
    compares runs on a shared machine; None where /proc does not show the backends.
    """
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine() -> str:
    cpus = os.cpu_count()
    try:
        model = subprocess.run(
            ["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        model = "?"
    system = f"{platform.system()} {platform.release()}"
    return f"{cpus} cores ({model}), {system}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=100_000)
    parser.add_argument("--interval", type=float, default=1.0, help="sweep interval, seconds")
    parser.add_argument("--burst", action="store_true", help="all windows close in one second")
    parser.add_argument("--workers", type=int, default=1, help="alarm processes")
    parser.add_argument(
        "--connections",
        type=int,
        default=2,
        help="connections each alarm process drains a backlog over (DOSEWATCH_SWEEP_CONNECTIONS)",
    )
    parser.add_argument(
        "--poll-only", action="store_true", help="sweep every interval only (no wake at close)"
    )
    parser.add_argument("--append", help="append the result to this Markdown file")
    args = parser.parse_args()

    name = f"dosewatch_bench_alarms_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _db_url(name)
    try:
        migrate(url)
        spread = 1.0 if args.burst else 60.0
        setup(url, args.slots, datetime.now(UTC) + timedelta(seconds=5), spread)
        bare = bare_baseline(url)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT max(window_end) FROM dose_slots").fetchone()
        assert row is not None
        last_close = row[0]
        time.sleep(max(0.0, (last_close - datetime.now(UTC)).total_seconds() - spread))
        result = run_pipeline(
            url,
            args.slots,
            last_close,
            args.interval,
            args.workers,
            not args.poll_only,
            args.connections,
        )
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    mode = "in one second" if args.burst else "over one minute"
    lines = [
        f"### bench/alarms — {args.slots:,} windows closing {mode} "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine()}; PostgreSQL at {ADMIN.rpartition('@')[2]}; sweep every "
        f"{args.interval:g} s{' only' if args.poll_only else ' and at each window close'}, "
        f"{args.workers} alarm process(es) draining over {args.connections} connection(s)"
        " each; the Twilio dispatch is not in"
        " the measure (it runs after the outbox commit).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| every alarm and first notification in the outbox, after the last window closed "
        f"| {result['all_done_s']:.2f} s |",
        "| per alarm, window close → commit of the alarm with its first notification: p50 "
        f"| {result['p50_s']:.2f} s |",
        f"| p99 | {result['p99_s']:.2f} s |",
        f"| max | {result['max_s']:.2f} s |",
        "| to the row's created_at (its transaction's start, as measured before): p50 "
        f"| {result['created_p50_s']:.2f} s |",
        f"| p99 | {result['created_p99_s']:.2f} s |",
        f"| baseline: bare INSERT … SELECT of the same rows | {bare:.2f} s |",
        f"| ratio (all done / bare) | {result['all_done_s'] / bare:.1f}× |",
        f"| CPU per alarm: alarm process(es) | {result['cpu_alarm_us']:.0f} µs |",
        f"| CPU per alarm: database backends | {result['cpu_db_us']:.0f} µs |",
        f"| load average (1 min) at the end | {os.getloadavg()[0]:.1f} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
