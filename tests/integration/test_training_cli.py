"""``dosewatch training setup`` and ``dosewatch training trigger`` as a trainer runs them, against
the test database (the command's own clock: the wall clock)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from psycopg_pool import ConnectionPool

from tests.helpers import add_dispenser
from tests.scenario import nurse_and_lead_with_a_patient

PRACTICE = ["+46709000001", "+46709000002"]


def dosewatch(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "training", *args],
        env={**os.environ, "DOSEWATCH_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_error_line(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("dosewatch: error:") == 1 and words in result.stderr
    assert "Traceback" not in result.stderr


def test_setup_then_trigger_pages_the_practice_phone(
    pool: ConnectionPool, database_url: str
) -> None:
    made = dosewatch(database_url, "setup", "--phone", PRACTICE[0], "--phone", PRACTICE[1],
                     "--patients", "2")  # fmt: skip
    assert made.returncode == 0, made.stderr
    with pool.connection() as conn:
        team = conn.execute("SELECT id, name, training FROM teams").fetchone()
        assert team is not None and (team["name"], team["training"]) == ("Övning", True)
        dispensers = [r["id"] for r in conn.execute("SELECT id FROM dispensers ORDER BY id")]
        audit = conn.execute("SELECT actor_name, object_type FROM audit_log").fetchall()
    assert dispensers == [f"TRN-{team['id']}-1", f"TRN-{team['id']}-2"]
    assert all(f"dispenser {d}" in made.stdout for d in dispensers)
    assert audit == [{"actor_name": "cli", "object_type": "team"}]

    fired = dosewatch(
        database_url, "trigger", "--dispenser", dispensers[0], "--kind", "missed_dose"
    )
    assert fired.returncode == 0, fired.stderr
    assert f"opened on {dispensers[0]}" in fired.stdout
    with pool.connection() as conn:
        alarm = conn.execute("SELECT id, kind, team_id FROM alarms").fetchone()
        assert alarm is not None and (alarm["kind"], alarm["team_id"]) == (
            "missed_dose",
            team["id"],
        )
        sent = conn.execute(
            "SELECT to_number FROM notifications WHERE alarm_id = %s", (alarm["id"],)
        ).fetchall()
        opened = conn.execute(
            "SELECT via, detail FROM alarm_history WHERE alarm_id = %s AND action = 'opened'",
            (alarm["id"],),
        ).fetchone()
    assert [s["to_number"] for s in sent] == [PRACTICE[0]]  # the primary on duty, by SMS
    assert opened is not None and opened["via"] == "training"
    assert opened["detail"]["triggered_by"] == "cli"

    again = dosewatch(
        database_url, "trigger", "--dispenser", dispensers[0], "--kind", "missed_dose"
    )
    _one_error_line(again, "already has an unresolved missed_dose alarm")


def test_refusals_are_one_line(pool: ConnectionPool, database_url: str) -> None:
    now = datetime.now(UTC)
    nurse_and_lead_with_a_patient(pool, now, ("+46701111111", "+46702222222"),
                                  (now - timedelta(hours=1), now + timedelta(hours=8)))  # fmt: skip
    add_dispenser(pool, "DSP-NOTEAM", now)
    _one_error_line(
        dosewatch(database_url, "trigger", "--dispenser", "DSP-1", "--kind", "jam"),
        "not a training team's",
    )
    _one_error_line(
        dosewatch(database_url, "trigger", "--dispenser", "DSP-NOTEAM", "--kind", "jam"),
        "not a training team's",
    )
    _one_error_line(
        dosewatch(database_url, "trigger", "--dispenser", "NOPE-1", "--kind", "jam"),
        "dispenser NOPE-1 does not exist",
    )
    bad_kind = dosewatch(database_url, "trigger", "--dispenser", "DSP-1", "--kind", "fire")
    assert bad_kind.returncode == 2 and "fire" in bad_kind.stderr
    # Anna's phone belongs to a real nurse: a practice team could never page it.
    _one_error_line(
        dosewatch(database_url, "setup", "--phone", "+46 70 111 11 11"),
        "belong(s) to a real nurse or patient",
    )
    _one_error_line(
        dosewatch(database_url, "setup", "--phone", PRACTICE[0], "--name", "Umeå Norr"),
        "a team named 'Umeå Norr' already exists",
    )
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM alarms").fetchone() == {"n": 0}
        assert conn.execute("SELECT count(*) AS n FROM teams").fetchone() == {"n": 1}
