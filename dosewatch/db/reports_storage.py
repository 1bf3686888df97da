"""Storage for the reports: the events' daily aggregate, compression and retention.

Two storage modes, the same figures:

- **TimescaleDB.** ``dose_events`` and ``dispenser_status`` are hypertables on the server's
  ``received_at`` (:mod:`dosewatch.db.migrate`). ``dose_events_daily`` is a *continuous
  aggregate* over ``dose_events`` (events, doses taken and replayed events per dispenser and
  UTC day), real-time (``materialized_only = false``), refreshed every minute over a window of
  :attr:`StoragePolicy.refresh_window` back. Because the hypertables are partitioned on
  *receive* time, an offline replay always lands in the newest chunk, however old the dose it
  reports: old chunks never change, so they are **compressed** after
  ``compress_*_after`` and dropped by the **retention** policy after ``retain_*`` (when set).
  The adherence rollup is not a continuous aggregate; migration 0012 says why.
- **Plain PostgreSQL.** ``dose_events_daily`` is a view with the same columns over the same
  buckets (``date_bin`` on the same origin as ``time_bucket``). Nothing is compressed or
  dropped: raw history stays until an operator removes it.

The replay rule (an event delivered 15 min or more after it happened was buffered by an offline
dispenser) is :data:`dosewatch.domain.insights.REPLAY_DELAY`; the SQL is generated from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from dosewatch.config import Settings
from dosewatch.domain.insights import REPLAY_DELAY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoragePolicy:
    """How long raw history stays uncompressed and how long it is kept (None: forever)."""

    compress_events_after: timedelta = timedelta(days=30)
    compress_status_after: timedelta = timedelta(days=7)
    retain_events: timedelta | None = None
    retain_status: timedelta | None = timedelta(days=400)
    # The continuous aggregate re-reads this far back on every refresh.
    refresh_window: timedelta = timedelta(days=35)

    def __post_init__(self) -> None:
        for name, retain in (("events", self.retain_events), ("status", self.retain_status)):
            if retain is not None and retain <= self.refresh_window:
                raise ValueError(
                    f"retention of {name} ({retain.days} days) must exceed the aggregate's"
                    f" refresh window ({self.refresh_window.days} days)"
                )


def _events_daily_select(bucket: str) -> str:
    replay_s = int(REPLAY_DELAY.total_seconds())
    return (
        f"SELECT dispenser_id, {bucket} AS day, count(*) AS events,"
        " count(*) FILTER (WHERE type = 'dose_taken') AS doses_taken,"
        f" count(*) FILTER (WHERE received_at - occurred_at >= interval '{replay_s} seconds')"
        " AS replayed"
        f" FROM dose_events GROUP BY dispenser_id, {bucket}"
    )


# time_bucket('1 day', t) buckets from 2000-01-03 00:00 UTC; date_bin on that origin is equal.
_PLAIN_BUCKET = "date_bin('1 day', received_at, timestamptz '2000-01-03 00:00:00+00')"
_TS_BUCKET = "time_bucket('1 day', received_at)"


def _is_cagg(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM timescaledb_information.continuous_aggregates"
        " WHERE view_name = 'dose_events_daily'"
    ).fetchone()
    return row is not None


def install_plain(conn: psycopg.Connection) -> None:
    """The plain-PostgreSQL ``dose_events_daily`` view (idempotent)."""
    conn.execute(
        f"CREATE OR REPLACE VIEW dose_events_daily AS {_events_daily_select(_PLAIN_BUCKET)}"
    )


def install_timescale(conn: psycopg.Connection, policy: StoragePolicy) -> None:
    """Compression, retention and the continuous aggregate with its refresh policy. Policies
    are replaced each time, so a changed setting takes effect on the next start."""
    for table, after, retain in (
        ("dose_events", policy.compress_events_after, policy.retain_events),
        ("dispenser_status", policy.compress_status_after, policy.retain_status),
    ):
        enabled = conn.execute(
            "SELECT compression_enabled FROM timescaledb_information.hypertables"
            " WHERE hypertable_name = %s",
            (table,),
        ).fetchone()
        # Settings cannot change once chunks are compressed: set them once, on first start.
        if not (enabled and enabled[0]):
            conn.execute(
                f"ALTER TABLE {table} SET (timescaledb.compress,"
                " timescaledb.compress_segmentby = 'dispenser_id',"
                " timescaledb.compress_orderby = 'received_at DESC')"
            )
        conn.execute("SELECT remove_compression_policy(%s::regclass, if_exists => true)", (table,))
        conn.execute("SELECT add_compression_policy(%s::regclass, %s::interval)", (table, after))
        conn.execute("SELECT remove_retention_policy(%s::regclass, if_exists => true)", (table,))
        if retain is not None:
            conn.execute("SELECT add_retention_policy(%s::regclass, %s::interval)", (table, retain))
    if not _is_cagg(conn):
        conn.execute("DROP VIEW IF EXISTS dose_events_daily")
        conn.execute(
            "CREATE MATERIALIZED VIEW dose_events_daily WITH (timescaledb.continuous,"
            " timescaledb.materialized_only = false) AS "
            f"{_events_daily_select(_TS_BUCKET)} WITH NO DATA"
        )
    conn.execute(
        "SELECT remove_continuous_aggregate_policy('dose_events_daily', if_exists => true)"
    )
    conn.execute(
        "SELECT add_continuous_aggregate_policy('dose_events_daily',"
        " start_offset => %s::interval, end_offset => interval '1 minute',"
        " schedule_interval => interval '1 minute')",
        (policy.refresh_window,),
    )


def policy_jobs(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    """TimescaleDB's background jobs for our tables: (proc, table) → job id (for tests/ops)."""
    rows = conn.execute(
        "SELECT proc_name, hypertable_name, job_id FROM timescaledb_information.jobs"
        " WHERE hypertable_name IS NOT NULL"
    ).fetchall()
    out = {}
    for row in rows:
        vals = list(row.values()) if isinstance(row, dict) else list(row)
        out[(str(vals[0]), str(vals[1]))] = int(vals[2])
    return out


def policy_from_settings(settings: Settings) -> StoragePolicy:
    """DOSEWATCH_COMPRESS_* and DOSEWATCH_RETENTION_* (0 days: keep forever)."""
    return StoragePolicy(
        compress_events_after=timedelta(days=settings.compress_events_after_days),
        compress_status_after=timedelta(days=settings.compress_status_after_days),
        retain_events=timedelta(days=settings.retention_events_days)
        if settings.retention_events_days
        else None,
        retain_status=timedelta(days=settings.retention_status_days)
        if settings.retention_status_days
        else None,
    )
