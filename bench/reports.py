"""bench/reports: a municipality's year of doses, and how fast the managers' reports answer.

10,000 patients on 20 teams (5 districts each), 4 doses a day (08, 12, 17, 21 local) for a
year: 14.6 million slots. Each patient has an adherence profile (most miss about 0.5 % of doses,
some 3 %, a few 12 %), takes 2–8 % late, has ~0.3 % unknown (offline at window close) of which
half are later resolved by an offline replay (→ taken late), and one patient in ten has a
3–14-day absence (→ suspended). Generated server-side in SQL, then rolled up once
(:func:`dosewatch.db.rollups.rebuild`).

Timed, median of three (the real code paths of the API, minus HTTP):
- the municipality's month report (:func:`dosewatch.reports.municipality`);
- one team's year with its weekly trend (:func:`dosewatch.reports.team`);
- one patient's year (:func:`dosewatch.reports.patient`);
- the incremental path: 1,000 late replays spread over the year, then one refresh.

Baseline, same run, same database: the same figures from a bare ``GROUP BY`` over the raw
slots (per patient-day, then the same grouping sets), checked equal to the report's.

Run: ``.venv/bin/python -m bench.reports [--patients N] [--append BENCHMARKS.md]``. It uses
DOSEWATCH_DATABASE_URL's server (default: the local PostgreSQL) in a private database, in the
storage mode DOSEWATCH_STORAGE selects (TimescaleDB when installed, by default).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dosewatch import reports
from dosewatch.db import reports as report_sql
from dosewatch.db import rollups
from dosewatch.db.migrate import migrate
from dosewatch.db.rollups import COLUMNS
from dosewatch.domain.report_period import Period, month_period

ADMIN = os.environ.get("DOSEWATCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
YEAR = Period(date(2025, 12, 1), date(2026, 11, 30))
MONTH = month_period(2026, 10)
NOW = datetime(2026, 12, 1, 6, tzinfo=UTC)
TZ = "Europe/Stockholm"


def _db_url(name: str) -> str:
    base, _, _ = ADMIN.rpartition("/")
    return f"{base}/{name}"


_PROFILE = """
CREATE TEMP TABLE profile AS
SELECT p.id AS patient_id, 'B' || lpad(p.id::text, 6, '0') AS dispenser_id,
       CASE WHEN r1 < 0.80 THEN 0.005 WHEN r1 < 0.95 THEN 0.03 ELSE 0.12 END AS p_miss,
       0.02 + 0.06 * r2 AS p_late, 0.003 AS p_unknown,
       CASE WHEN r3 < 0.1 THEN (date '2025-12-01' + (r4 * 340)::int) END AS abs_from,
       3 + (r2 * 11)::int AS abs_days
FROM patients p, LATERAL (SELECT random() r1, random() r2, random() r3, random() r4) r
"""

_SLOTS = """
INSERT INTO dose_slots (dispenser_id, due_at, window_end, state, schedule_version, local_time,
                        label, closed_at)
SELECT pr.dispenser_id, x.due, x.due + interval '45 minutes',
       CASE WHEN pr.abs_from IS NOT NULL AND g.day >= pr.abs_from
                 AND g.day < pr.abs_from + pr.abs_days THEN 'suspended'
            WHEN x.r < pr.p_miss THEN 'missed'
            WHEN x.r < pr.p_miss + pr.p_unknown / 2 THEN 'unknown'
            WHEN x.r < pr.p_miss + pr.p_unknown + pr.p_late THEN 'taken_late'
            ELSE 'taken' END,
       1, t.lt, t.label, x.due + interval '45 minutes'
FROM profile pr
CROSS JOIN generate_series(%(start)s::date, %(end)s::date, interval '1 day') g(day)
CROSS JOIN (VALUES (time '08:00', 'morning'), (time '12:00', 'noon'),
                   (time '17:00', 'afternoon'), (time '21:00', 'evening')) t(lt, label)
CROSS JOIN LATERAL (SELECT (g.day + t.lt) AT TIME ZONE %(tz)s AS due, random() AS r) x
WHERE pr.patient_id BETWEEN %(lo)s AND %(hi)s
"""


def setup(url: str, patients: int) -> float:
    """The fleet and its year; returns the seconds the load took (rollup included)."""
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO teams (name, created_at) SELECT 'Team ' || lpad(g::text, 2, '0'),"
            " %s FROM generate_series(1, 20) g",
            (NOW,),
        )
        conn.execute(
            "INSERT INTO patients (name, phone, team_id, district) SELECT"
            " 'Patient ' || g, '+4690' || g, 1 + g %% 20, 'District ' || (g / 20) %% 5"
            " FROM generate_series(1, %s) g",
            (patients,),
        )
        conn.execute(_PROFILE)
        conn.execute(
            "INSERT INTO dispensers (id, patient_id) SELECT dispenser_id, patient_id FROM profile"
        )
        conn.execute(
            "INSERT INTO schedules (dispenser_id, version, timezone, doses, valid_from,"
            " created_at, effective_from) SELECT dispenser_id, 1, %s,"
            ' \'[{"time":"08:00"},{"time":"12:00"},{"time":"17:00"},'
            '{"time":"21:00"}]\', %s, %s, %s FROM profile',
            (TZ, YEAR.start, NOW, datetime(2025, 11, 30, tzinfo=UTC)),
        )
        conn.execute(
            "INSERT INTO absences (dispenser_id, starts_at, ends_at, reason, created_by,"
            " created_at) SELECT dispenser_id, abs_from::timestamp AT TIME ZONE %s,"
            " (abs_from + abs_days)::timestamp AT TIME ZONE %s, 'hospital', 'bench', %s"
            " FROM profile WHERE abs_from IS NOT NULL",
            (TZ, TZ, NOW),
        )
        # Bulk load: the dirty-day triggers are for live changes; the rollup is rebuilt once.
        conn.execute("ALTER TABLE dose_slots DISABLE TRIGGER adherence_slots_insert")
        step = 1000
        for lo in range(1, patients + 1, step):
            conn.execute(
                _SLOTS,
                {"start": YEAR.start, "end": YEAR.end, "tz": TZ, "lo": lo, "hi": lo + step - 1},
            )
            print(f"  slots for patients {lo}–{min(lo + step - 1, patients)}", flush=True)
        conn.execute("ALTER TABLE dose_slots ENABLE TRIGGER adherence_slots_insert")
        conn.execute("ANALYZE")
    with psycopg.connect(url, row_factory=dict_row) as conn, conn.transaction():
        rollups.rebuild(conn, NOW)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE adherence_daily")
        conn.execute("VACUUM ANALYZE dose_slots")
    return time.perf_counter() - t0


# --- the baseline: the same figures straight from the slots -------------------------------

_RAW_COUNTS = ", ".join(f"count(*) FILTER (WHERE s.state = '{c}')::int AS {c}" for c in COLUMNS)
_OUTER = ", ".join(f"coalesce(sum({c}), 0)::int AS {c}" for c in COLUMNS)
_BASELINE = f"""
WITH pd AS (
    SELECT d.patient_id, (s.due_at AT TIME ZONE sc.timezone)::date AS local_date, p.team_id,
           p.district, {_RAW_COUNTS}
    FROM dose_slots s
    JOIN schedules sc ON sc.dispenser_id = s.dispenser_id AND sc.version = s.schedule_version
    JOIN dispensers d ON d.id = s.dispenser_id JOIN patients p ON p.id = d.patient_id
    WHERE s.due_at >= (%(start)s::date - 1)::timestamp AT TIME ZONE 'UTC'
      AND s.due_at < (%(end)s::date + 2)::timestamp AT TIME ZONE 'UTC'
      AND (s.due_at AT TIME ZONE sc.timezone)::date BETWEEN %(start)s AND %(end)s
      AND (%(team)s::bigint IS NULL OR p.team_id = %(team)s)
      AND (%(patient)s::bigint IS NULL OR d.patient_id = %(patient)s)
    GROUP BY 1, 2, 3, 4
)
SELECT GROUPING(team_id) AS g_team, GROUPING(district) AS g_district,
       GROUPING(week) AS g_week, GROUPING(patient_id) AS g_patient,
       team_id, district, week, patient_id, {_OUTER},
       count(*) FILTER (WHERE {report_sql.MONITORED_SQL})::int AS monitored_days,
       count(*) FILTER (WHERE {report_sql.CORRECT_SQL})::int AS correct_days,
       count(DISTINCT patient_id)::int AS patients
FROM (SELECT *, date_trunc('week', local_date)::date AS week FROM pd) x
GROUP BY GROUPING SETS ((), (team_id), (team_id, district), (week), (patient_id))
"""


def baseline(
    conn: psycopg.Connection[Any], period: Period, team: int | None, patient: int | None
) -> dict[str, Any]:
    rows = conn.execute(
        _BASELINE, {"start": period.start, "end": period.end, "team": team, "patient": patient}
    ).fetchall()
    total = next(r for r in rows if r["g_team"] and r["g_week"] and r["g_patient"])
    return report_sql.to_figures(total).as_dict()


def median_of_3(fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def run(url: str) -> list[tuple[str, float, float | None]]:
    out: list[tuple[str, float, float | None]] = []
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        team_id = 1
        names = report_sql.teams(conn)
        info = report_sql.patients(conn, report_sql.Scope(patient_id=42))[42]
        cases: list[tuple[str, Callable[[], dict[str, Any]], Callable[[], dict[str, Any]]]] = [
            (
                "municipality, one month (Oct 2026)",
                lambda: reports.municipality(conn, MONTH, 95.0, NOW),
                lambda: baseline(conn, MONTH, None, None),
            ),
            (
                "one team's year, with the weekly trend",
                lambda: reports.team(conn, team_id, names[team_id], YEAR, 95.0, NOW),
                lambda: baseline(conn, YEAR, team_id, None),
            ),
            (
                "one patient's year",
                lambda: reports.patient(conn, info, YEAR, NOW),
                lambda: baseline(conn, YEAR, None, 42),
            ),
        ]
        for name, report, base in cases:
            t_report, body = median_of_3(report)
            t_base, figures = median_of_3(base)
            assert body["figures"] == figures, f"{name}: the report and the baseline differ"
            out.append((name, t_report, t_base))
        # The incremental path: 1,000 slots flipped by late replays, anywhere in the year.
        with conn.transaction():
            conn.execute(
                "UPDATE dose_slots SET state = 'taken_late' WHERE id IN (SELECT id FROM"
                " dose_slots WHERE state IN ('missed', 'unknown') ORDER BY random() LIMIT 1000)"
            )
        t0 = time.perf_counter()
        with conn.transaction():
            days = rollups.refresh_all(conn, NOW)
        out.append(
            (
                f"refresh after 1,000 late replays ({days} dispenser-days)",
                time.perf_counter() - t0,
                None,
            )
        )
    return out


def machine(url: str) -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version()").fetchone()
    pg = str(row[0]).split(" on ")[0] if row else "PostgreSQL"
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()},"
        f" Python {platform.python_version()}; {pg}; load average before the timings"
        f" {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--append", help="append the results to this Markdown file")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args()
    name = "dosewatch_bench_reports"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = _db_url(name)
    try:
        mode = migrate(url)
        print(f"storage mode: {mode}; loading {args.patients} patients × 365 days × 4 doses")
        load_s = setup(url, args.patients)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM dose_slots").fetchone()
            rolled = conn.execute("SELECT count(*) FROM adherence_daily").fetchone()
        slots, days = (row[0] if row else 0), (rolled[0] if rolled else 0)
        where = machine(url)
        results = run(url)
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### bench/reports — {args.patients:,} patients × 1 year × 4 doses ({stamp})",
        "",
        f"Machine: {where}. Storage mode: **{mode}**. {slots:,} slots rolled up into"
        f" {days:,} dispenser-days; load and rollup {load_s:.0f} s. Median of three runs.",
        "",
        "| measure | report (rollup) | baseline: GROUP BY over raw slots |",
        "|---|---|---|",
    ]
    for label, t, base in results:
        lines.append(
            f"| {label} | {t * 1000:.0f} ms | {'' if base is None else f'{base * 1000:.0f} ms'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
