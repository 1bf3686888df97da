"""Migrations: versioned, idempotent, safe when processes start at once; TimescaleDB if present."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dosewatch.db.migrate import (
    HYPERTABLES,
    _migration_files,
    migrate,
    storage_mode,
    timescale_available,
)
from dosewatch.domain.alarms import derive_state
from tests import servers


@pytest.fixture
def fresh_db() -> Iterator[str]:
    with servers.postgres_server() as (admin, _), servers.private_database(admin) as url:
        yield url


def test_concurrent_first_starts_apply_each_migration_once(fresh_db: str) -> None:
    errors: list[BaseException] = []
    modes: list[str] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            modes.append(migrate(fresh_db))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(modes)) == 1
    with psycopg.connect(fresh_db) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [v for v, _, _ in _migration_files()]
    assert migrate(fresh_db) == modes[0]  # and again: nothing to do


def test_storage_mode_is_logged(fresh_db: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dosewatch.db.migrate"):
        mode = migrate(fresh_db)
    assert f"storage mode: {mode}" in caplog.text
    with psycopg.connect(fresh_db) as conn:
        wanted = os.environ.get("DOSEWATCH_STORAGE", "auto") != "postgresql"
        assert mode == ("timescaledb" if wanted and timescale_available(conn) else "postgresql")
        assert storage_mode(conn) == mode


def test_generated_alarm_state_agrees_with_the_domain_rule(database_url: str) -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with psycopg.connect(database_url) as conn, conn.transaction(force_rollback=True):
        patient = conn.execute(
            "INSERT INTO patients (name, phone) VALUES ('P', '+46 1') RETURNING id"
        ).fetchone()
        assert patient is not None
        conn.execute("INSERT INTO dispensers (id, patient_id) VALUES ('DSP-STATE', %s)", patient)
        for ack in (None, t):
            for cleared in (None, t):
                for resolved in (None, t):
                    row = conn.execute(
                        "INSERT INTO alarms (kind, dispenser_id, patient_id, opened_at,"
                        " acknowledged_at, cleared_at, resolved_at, outcome)"
                        " VALUES (%s, 'DSP-STATE', %s, %s, %s, %s, %s, %s)"
                        " RETURNING state",
                        # A kind each: device alarms are unique per (dispenser, kind) while open.
                        (
                            f"k{ack}{cleared}{resolved}",
                            patient[0],
                            t,
                            ack,
                            cleared,
                            resolved,
                            resolved and "other",
                        ),
                    ).fetchone()
                    assert row is not None
                    assert row[0] == derive_state(ack, cleared, resolved).value


def _timescale_present() -> bool:
    with servers.postgres_server() as (admin, _), psycopg.connect(admin) as conn:
        return timescale_available(conn)


@pytest.mark.skipif(
    not _timescale_present(), reason="the timescaledb extension is not installed on this PostgreSQL"
)
def test_hypertables_when_timescaledb_is_installed(fresh_db: str) -> None:
    assert migrate(fresh_db, timescale=True) == "timescaledb"
    with psycopg.connect(fresh_db) as conn:
        names = {
            r[0]
            for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
        }
    assert names == {table for table, _, _ in HYPERTABLES}


def test_quarantine_repeats_migration_merges_existing_duplicates(fresh_db: str) -> None:
    """0023 on a table written the old way (a row per receipt): one row per distinct message,
    with the count and the first and last receipt; distinct messages stay apart."""
    t = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for version, _, sql in _migration_files():
            if version < 23:
                conn.execute(sql.encode())
        old = [
            (t + timedelta(minutes=5), "a/events", b"{x", "not JSON"),
            (t, "a/events", b"{x", "not JSON"),
            (t + timedelta(days=2), "a/events", b"{x", "not JSON"),
            (t, "a/events", b"{x", "invalid schema"),  # another reason
            (t, "b/events", b"{x", "not JSON"),  # another topic
            (t, "a/events", b"\xff{x", "not JSON"),  # other bytes
        ]
        for at, topic, payload, reason in old:
            conn.execute(
                "INSERT INTO quarantine (received_at, topic, payload, reason)"
                " VALUES (%s, %s, %s, %s)",
                (at, topic, payload, reason),
            )
        conn.execute([s for v, _, s in _migration_files() if v == 23][0].encode())
        rows = conn.execute(
            "SELECT id, topic, payload, reason, repeats, received_at, last_received_at"
            " FROM quarantine ORDER BY id"
        ).fetchall()
    assert [(r[0], r[4], r[5], r[6]) for r in rows] == [
        (1, 3, t, t + timedelta(days=2)),  # the oldest row stays, with the group's figures
        (4, 1, t, t),
        (5, 1, t, t),
        (6, 1, t, t),
    ]
    assert [bytes(r[2]) for r in rows] == [b"{x", b"{x", b"{x", b"\xff{x"]
