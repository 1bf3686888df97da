"""Both storage modes on the same server: TimescaleDB (hypertables, the continuous aggregate,
compression and retention run as TimescaleDB's own jobs) and plain PostgreSQL (the same rollup
and a view) give the same figures for the same data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from dosewatch.db import reports as report_sql
from dosewatch.db import reports_storage, rollups
from dosewatch.db.migrate import migrate, timescale_available
from dosewatch.db.reports_slots import device_counts
from dosewatch.db.reports_storage import StoragePolicy
from dosewatch.domain.report_period import Period
from dosewatch.reports import municipality
from tests import servers

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _timescale_present() -> bool:
    with servers.postgres_server() as (admin, _), psycopg.connect(admin) as conn:
        return timescale_available(conn)


needs_timescale = pytest.mark.skipif(
    not _timescale_present(), reason="the timescaledb extension is not installed on this PostgreSQL"
)


@pytest.fixture
def two_dbs() -> Iterator[dict[str, str]]:
    with (
        servers.postgres_server() as (admin, _),
        servers.private_database(admin) as ts,
        servers.private_database(admin) as plain,
    ):
        yield {"timescale": ts, "plain": plain}


def _load(url: str) -> None:
    """Two months of slots, events (some replayed late) and status for three patients."""
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("INSERT INTO teams (name, created_at) VALUES ('Öst', %s)", (NOW,))
        for i in range(3):
            d = f"DSP-{i}"
            conn.execute(
                "INSERT INTO patients (id, name, phone, team_id, district) VALUES"
                " (%s, %s, '+4690', 1, %s)",
                (i + 1, f"P{i}", "Haga" if i else None),
            )
            conn.execute("INSERT INTO dispensers (id, patient_id) VALUES (%s, %s)", (d, i + 1))
            conn.execute(
                "INSERT INTO schedules (dispenser_id, version, timezone, doses, valid_from,"
                " created_at, effective_from) VALUES (%s, 1, 'Europe/Stockholm', '[]',"
                " '2026-09-01', %s, %s)",
                (d, NOW, NOW - timedelta(days=90)),
            )
            for day in range(60):
                for hour in (7, 19):
                    due = datetime(2026, 9, 20, hour, tzinfo=UTC) + timedelta(days=day)
                    k = (day * 2 + hour + i) % 17
                    state = (
                        "missed"
                        if k == 0
                        else "unknown"
                        if k == 1
                        else "taken_late"
                        if k in (2, 3)
                        else "taken"
                    )
                    received = due + timedelta(minutes=90 if k == 2 else 5)
                    eid = f"e-{i}-{day}-{hour}"
                    conn.execute(
                        "INSERT INTO dose_slots (dispenser_id, due_at, window_end, state,"
                        " schedule_version, taken_event_id) VALUES (%s, %s, %s, %s, 1, %s)",
                        (
                            d,
                            due,
                            due + timedelta(minutes=45),
                            state,
                            eid if state.startswith("taken") else None,
                        ),
                    )
                    if state.startswith("taken"):
                        conn.execute(
                            "INSERT INTO dose_events (dispenser_id, event_id, seq, type,"
                            " occurred_at, received_at, dose_due_at, match, payload) VALUES"
                            " (%s, %s, 1, 'dose_taken', %s, %s, %s, 'matched', '{}')",
                            (d, eid, due + timedelta(minutes=5), received, due),
                        )
                    conn.execute(
                        "INSERT INTO dispenser_status (dispenser_id, at, received_at, payload)"
                        " VALUES (%s, %s, %s, %s)",
                        (d, due, due, json.dumps({"v": 1})),
                    )


def _figures(url: str) -> dict[str, Any]:
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        with conn.transaction():
            rollups.refresh_all(conn, NOW)
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
            conn.execute("CALL refresh_continuous_aggregate('dose_events_daily', NULL, NULL)")
        report = municipality(conn, Period(date(2026, 9, 20), date(2026, 11, 18)), 95.0, NOW)
        since = datetime(2026, 9, 1, tzinfo=UTC)
        devices = device_counts(
            conn, since, NOW, date(2026, 9, 1), date(2026, 11, 23), report_sql.Scope()
        )
    return {"report": report, "devices": devices}


@needs_timescale
def test_plain_and_timescale_give_the_same_figures(two_dbs: dict[str, str]) -> None:
    assert migrate(two_dbs["timescale"], timescale=True) == "timescaledb"
    assert migrate(two_dbs["plain"], timescale=False) == "postgresql"
    for url in two_dbs.values():
        _load(url)
    ts, plain = _figures(two_dbs["timescale"]), _figures(two_dbs["plain"])
    assert ts == plain
    assert ts["report"]["figures"]["expected"] == 360 - ts["report"]["figures"]["pending"]
    assert sum(d.replayed_events for d in ts["devices"]) > 0  # the 90-minute-late takes


@needs_timescale
def test_compression_and_retention_run_as_timescale_jobs(two_dbs: dict[str, str]) -> None:
    url = two_dbs["timescale"]
    policy = StoragePolicy(retain_status=timedelta(days=40), refresh_window=timedelta(days=35))
    migrate(url, timescale=True, policy=policy)
    _load(url)  # events and status from 2026-09-20 to 2026-11-18, received then
    with psycopg.connect(url, autocommit=True) as conn:
        jobs = reports_storage.policy_jobs(conn)
        before = conn.execute("SELECT count(*) FROM dispenser_status").fetchone()
        events_before = conn.execute("SELECT count(*) FROM dose_events").fetchone()
        conn.execute("CALL run_job(%s)", (jobs[("policy_compression", "dose_events")],))
        conn.execute("CALL run_job(%s)", (jobs[("policy_retention", "dispenser_status")],))
        compressed = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'dose_events' AND is_compressed"
        ).fetchone()
        after = conn.execute("SELECT count(*) FROM dispenser_status").fetchone()
        events_after = conn.execute("SELECT count(*) FROM dose_events").fetchone()
        oldest_status = conn.execute("SELECT min(received_at) FROM dispenser_status").fetchone()
    assert compressed is not None and compressed[0] >= 1  # chunks older than 30 days
    assert migrate(url, timescale=True, policy=policy) == "timescaledb"  # a restart still works
    assert events_before == events_after  # compressed, not lost: still readable
    assert before is not None and after is not None and 0 < after[0] < before[0]
    assert oldest_status is not None
    # Retention drops whole chunks (1 day each) older than 40 days before the real now.
    assert oldest_status[0] >= datetime.now(UTC) - timedelta(days=42)
    # The rollup does not depend on raw events: its figures survive compression and retention.
    assert _figures(url)["report"]["figures"]["taken"] > 0


@needs_timescale
def test_the_aggregate_refresh_window_covers_late_replays(two_dbs: dict[str, str]) -> None:
    url = two_dbs["timescale"]
    migrate(url, timescale=True)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT config FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        ).fetchone()
    assert row is not None and row[0]["start_offset"] == "35 days"
    with pytest.raises(ValueError):
        StoragePolicy(retain_events=timedelta(days=30))  # would drop what a refresh re-reads
