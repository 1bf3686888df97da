"""Migration 0019: alarms, their history and their outbox rows keep the guarantee of the foreign
keys they replaced (checked per statement instead of per row), on every path that writes them:
no row can name a dispenser, patient, team, policy, alarm or nurse that does not exist, and the
rows they name cannot be deleted or renumbered."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from alarms.jobs import sweep_missed_doses
from dosewatch.clock import FakeClock
from tests.conftest import wait_for
from tests.helpers import alarms_of
from tests.scenario import nurse_and_lead_with_a_patient

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
SHIFT = (datetime(2026, 11, 23, 6, 0, tzinfo=UTC), datetime(2026, 11, 23, 15, 0, tzinfo=UTC))


@pytest.fixture
def alarm(pool: ConnectionPool, clock: FakeClock) -> dict[str, Any]:
    """A missed-dose alarm of a team's patient, opened by the sweep with its first SMS."""
    nurse_and_lead_with_a_patient(pool, clock.now(), ("+46701111111", "+46702222222"), SHIFT)
    clock.set(DUE + timedelta(minutes=45))
    assert len(sweep_missed_doses(pool, clock)) == 1
    [row] = alarms_of(pool, "DSP-1")
    assert row["team_id"] is not None and row["policy_id"] is not None
    with pool.connection() as conn:
        nurse = conn.execute(
            "SELECT nurse_id FROM notifications WHERE alarm_id = %s AND nurse_id IS NOT NULL",
            (row["id"],),
        ).fetchone()
    assert nurse is not None  # the first step's SMS names its nurse
    return {**row, "nurse_id": nurse["nurse_id"]}


def refused(pool: ConnectionPool, sql: str, params: tuple[Any, ...] = ()) -> str:
    """Run ``sql`` and return the foreign-key violation it must raise (then roll back)."""
    with pool.connection() as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as caught:
            conn.execute(sql, params)
        conn.rollback()
    return str(caught.value)


ALARM_INSERT = (
    "INSERT INTO alarms (kind, dispenser_id, patient_id, priority, team_id, policy_id, opened_at)"
    " VALUES ('dispenser_offline', %s, %s, 'high', %s, %s, now())"
)


def test_an_alarm_naming_a_missing_row_is_refused(
    pool: ConnectionPool, alarm: dict[str, Any]
) -> None:
    ok = (alarm["dispenser_id"], alarm["patient_id"], alarm["team_id"], alarm["policy_id"])
    for i, table in enumerate(("dispensers", "patients", "teams", "policy_versions")):
        values = list(ok)
        values[i] = "DSP-NONE" if i == 0 else 987654
        assert f'reference to "{table}"' in refused(pool, ALARM_INSERT, tuple(values))
    # ... also when only one row of a multi-row statement is wrong,
    assert "DSP-NONE" in refused(
        pool,
        "INSERT INTO alarms (kind, dispenser_id, patient_id, priority, opened_at) VALUES"
        " ('dispenser_offline', %s, %s, 'high', now()),"
        " ('low_battery', 'DSP-NONE', %s, 'low', now())",
        (alarm["dispenser_id"], alarm["patient_id"], alarm["patient_id"]),
    )
    # ... and when an update points an alarm elsewhere.
    for column, table in (("team_id", "teams"), ("acknowledged_nurse_id", "nurses")):
        sql = f"UPDATE alarms SET {column} = 987654 WHERE id = %s"
        assert f'reference to "{table}"' in refused(pool, sql, (alarm["id"],))
    # The correct row goes in (NULL team and policy are allowed, as before).
    with pool.connection() as conn:
        conn.execute(ALARM_INSERT, ok)
        conn.execute(
            ALARM_INSERT.replace("'dispenser_offline'", "'low_battery'"), (*ok[:2], None, None)
        )


def test_history_and_notifications_of_a_missing_alarm_or_nurse_are_refused(
    pool: ConnectionPool, alarm: dict[str, Any]
) -> None:
    history = (
        "INSERT INTO alarm_history (alarm_id, at, action, actor, via) VALUES"
        " (%s, now(), 'note', 'system', 'console')"
    )
    assert 'reference to "alarms"' in refused(pool, history, (987654,))
    outbox = (
        "INSERT INTO notifications (alarm_id, idempotency_key, purpose, channel, nurse_id,"
        " created_at, updated_at) VALUES (%s, %s, 'alarm', 'sms', %s, now(), now())"
    )
    assert 'reference to "alarms"' in refused(pool, outbox, (987654, "k1", alarm["nurse_id"]))
    assert 'reference to "nurses"' in refused(pool, outbox, (alarm["id"], "k2", 987654))
    assert "alarms" in refused(
        pool, "UPDATE alarm_history SET alarm_id = 987654 WHERE alarm_id = %s", (alarm["id"],)
    )
    assert "nurses" in refused(
        pool, "UPDATE notifications SET nurse_id = 987654 WHERE alarm_id = %s", (alarm["id"],)
    )
    with pool.connection() as conn:  # the same rows, naming rows that exist, go in
        conn.execute(history, (alarm["id"],))
        conn.execute(outbox, (alarm["id"], "k3", alarm["nurse_id"]))


def test_rows_an_alarm_names_cannot_be_deleted_or_renumbered(
    pool: ConnectionPool, alarm: dict[str, Any]
) -> None:
    keys = {
        "alarms": alarm["id"],
        "dispensers": alarm["dispenser_id"],
        "patients": alarm["patient_id"],
        "teams": alarm["team_id"],
        "nurses": alarm["nurse_id"],
    }
    for table, key in keys.items():
        assert "refused" in refused(pool, f"DELETE FROM {table} WHERE id = %s", (key,))
        new_key = "DSP-OTHER" if table == "dispensers" else 987654
        assert "refused" in refused(
            pool, f"UPDATE {table} SET id = %s WHERE id = %s", (new_key, key)
        )
    # Updating anything else is untouched.
    with pool.connection() as conn:
        conn.execute("UPDATE teams SET name = 'Renamed' WHERE id = %s", (alarm["team_id"],))
        conn.execute("UPDATE alarms SET note = 'seen' WHERE id = %s", (alarm["id"],))
    assert alarms_of(pool, alarm["dispenser_id"])[0]["note"] == "seen"


def test_truncating_a_named_table_alone_is_refused_but_together_allowed(
    pool: ConnectionPool, alarm: dict[str, Any]
) -> None:
    # scaip_forwards keeps its declarative key; PostgreSQL itself wants it in the command.
    assert "alarm_history" in refused(pool, "TRUNCATE alarms, scaip_forwards")
    assert "refers to it" in refused(pool, "TRUNCATE nurses CASCADE")
    with pool.connection() as conn:
        conn.execute("TRUNCATE alarms, scaip_forwards, alarm_history, notifications")
        assert conn.execute("SELECT count(*) AS n FROM alarms").fetchone() == {"n": 0}


# Migration 0022: alarms.slot_id, checked and locked once per statement.


def test_an_alarm_naming_a_missing_slot_is_refused(
    pool: ConnectionPool, alarm: dict[str, Any]
) -> None:
    insert = ALARM_INSERT.replace("(kind,", "(slot_id, kind,").replace("VALUES (", "VALUES (%s, ")
    ok = (alarm["dispenser_id"], alarm["patient_id"], alarm["team_id"], alarm["policy_id"])
    assert "(slot_id)=(987654)" in refused(pool, insert, (987654, *ok))
    # ... also as one row of many, and when an update points an alarm at another slot.
    assert "(slot_id)=(987654)" in refused(
        pool,
        "INSERT INTO alarms (kind, slot_id, dispenser_id, patient_id, priority, opened_at)"
        " VALUES ('missed_dose', NULL, %s, %s, 'high', now()),"
        " ('missed_dose', 987654, %s, %s, 'high', now())",
        (*ok[:2], *ok[:2]),
    )
    sql = "UPDATE alarms SET slot_id = 987654 WHERE id = %s"
    assert "dose_slots" in refused(pool, sql, (alarm["id"],))


def test_a_slot_an_alarm_names_cannot_be_deleted_renumbered_or_truncated_alone(
    pool: ConnectionPool, alarm: dict[str, Any]
) -> None:
    slot = alarm["slot_id"]
    assert "still referenced" in refused(pool, "DELETE FROM dose_slots WHERE id = %s", (slot,))
    assert "refused" in refused(pool, "UPDATE dose_slots SET id = 987654 WHERE id = %s", (slot,))
    assert "refers to it" in refused(pool, "TRUNCATE dose_slots")
    # A slot nothing names is deleted as before (a replanned schedule).
    with pool.connection() as conn:
        other = conn.execute(
            "SELECT id FROM dose_slots WHERE id <> %s ORDER BY id LIMIT 1", (slot,)
        ).fetchone()
        assert other is not None
        conn.execute("DELETE FROM dose_slots WHERE id = %s", (other["id"],))
    # At a higher isolation level the check could not see an alarm opened meanwhile: refused.
    with pool.connection() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("DELETE FROM dose_slots WHERE id = %s", (other["id"] + 1,))
        conn.rollback()
        conn.isolation_level = None


def test_a_slot_deleted_while_its_alarm_opens_leaves_no_alarm_without_its_slot(
    pool: ConnectionPool, alarm: dict[str, Any], database_url: str
) -> None:
    """Either order of two open transactions: the second waits on the slot's row lock, as
    with the foreign key, and is refused once the first commits."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT id FROM dose_slots WHERE id <> %s ORDER BY id LIMIT 1", (alarm["slot_id"],)
        ).fetchone()
    assert row is not None
    open_alarm = (
        "INSERT INTO alarms (kind, slot_id, dispenser_id, patient_id, priority, opened_at)"
        " VALUES ('missed_dose', %s, %s, %s, 'high', now())"
    )
    args = (row["id"], alarm["dispenser_id"], alarm["patient_id"])
    delete = ("DELETE FROM dose_slots WHERE id = %s", (row["id"],))

    def race(first: tuple[str, Any], second: tuple[str, Any]) -> BaseException | None:
        with psycopg.connect(database_url) as a, psycopg.connect(database_url) as b:
            a.execute(*first)
            with ThreadPoolExecutor(1) as pool_b:
                waiting = pool_b.submit(b.execute, *second)
                waits_on = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s"
                pid = b.info.backend_pid
                wait_for(lambda: a.execute(waits_on, (pid,)).fetchone()[0], what="b's row lock")
                assert not waiting.done()
                a.commit()
                error = waiting.exception(timeout=10)
            b.rollback()
        return error

    # The alarm first: the delete waits, then sees the committed alarm and is refused.
    assert isinstance(race((open_alarm, args), delete), psycopg.errors.ForeignKeyViolation)
    with pool.connection() as conn:
        conn.execute("UPDATE alarms SET slot_id = NULL WHERE slot_id = %s", (row["id"],))
    # The delete first: the alarm waits, then finds its slot gone and is refused.
    assert isinstance(race(delete, (open_alarm, args)), psycopg.errors.ForeignKeyViolation)
    with pool.connection() as conn:
        gone = conn.execute("SELECT count(*) AS n FROM dose_slots WHERE id = %s", (row["id"],))
        assert gone.fetchone() == {"n": 0}
        orphans = conn.execute(
            "SELECT count(*) AS n FROM alarms a WHERE a.slot_id IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM dose_slots s WHERE s.id = a.slot_id)"
        )
        assert orphans.fetchone() == {"n": 0}
