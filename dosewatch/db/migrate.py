"""Versioned, idempotent migrations, safe when several processes start at once.

Each ``migrations/NNNN_name.sql`` runs once, in its own transaction, recorded in
``schema_migrations``. A session-level advisory lock serialises concurrent starters: the second
waits, then finds nothing left to do. After the SQL files, TimescaleDB is switched on where the
extension is installed; otherwise the same tables stay plain PostgreSQL tables with the same
columns and indexes, so every query works on both.
"""

from __future__ import annotations

import logging
import os
from importlib import resources

import psycopg

from dosewatch.db import reports_storage
from dosewatch.db.reports_storage import StoragePolicy

log = logging.getLogger(__name__)

_LOCK_KEY = 0x646F7365  # "dose"

# (table, time column, chunk interval). Partitioned on the server's receive time: device clocks
# can be wildly wrong, and retention and compression should follow when data arrived.
HYPERTABLES = (
    ("dose_events", "received_at", "7 days"),
    ("dispenser_status", "received_at", "1 day"),
)


def _migration_files() -> list[tuple[int, str, str]]:
    files = []
    for entry in resources.files("dosewatch.db").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            files.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(files)


def migrate(
    url: str, *, timescale: bool | None = None, policy: StoragePolicy | None = None
) -> str:
    """Apply pending migrations; return the storage mode, ``timescaledb`` or ``postgresql``.

    ``timescale=False`` keeps plain tables even where the extension is installed (the plain
    path's tests run on the same server); ``None`` follows ``DOSEWATCH_STORAGE`` (``auto``, the
    default, or ``postgresql``). ``policy`` sets compression and retention (TimescaleDB only)."""
    if timescale is None:
        timescale = os.environ.get("DOSEWATCH_STORAGE", "auto").strip().lower() != "postgresql"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in _migration_files():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                log.info("applied migration %s", name)
            # A database that already has the extension stays in TimescaleDB mode.
            keep = timescale or storage_mode(conn) == "timescaledb"
            mode = _enable_timescale(conn) if keep else "postgresql"
            if mode == "timescaledb":
                reports_storage.install_timescale(conn, policy or StoragePolicy())
            else:
                reports_storage.install_plain(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    log.info("storage mode: %s", mode)
    return mode


def timescale_available(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def _enable_timescale(conn: psycopg.Connection) -> str:
    if not timescale_available(conn):
        return "postgresql"
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            for table, column, interval in HYPERTABLES:
                conn.execute(
                    "SELECT create_hypertable(%s::regclass, %s,"
                    " chunk_time_interval => %s::interval,"
                    " if_not_exists => true, migrate_data => true)",
                    (table, column, interval),
                )
    except psycopg.Error as exc:
        # Installed but not loadable (e.g. missing shared_preload_libraries): say so, keep going.
        log.warning(
            "timescaledb is installed but could not be enabled (%s); using plain tables",
            str(exc).strip().splitlines()[0],
        )
        return "postgresql"
    return "timescaledb"


def storage_mode(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return "timescaledb" if row else "postgresql"
