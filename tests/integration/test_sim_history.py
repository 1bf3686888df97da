"""``sim history`` and ``sim check`` on the real database.

History is made by the service's own code under a FakeClock (the gateway's writer, the alarm
jobs, the API); the reconciliation reads only the public API. A doctored truth shows that the
check does find differences, and the CLI exits 1 on them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from typer.testing import CliRunner

from dashboards.app import create_app
from dispenser_sim.profiles import load_fleet
from dispenser_sim.reconcile import check
from dispenser_sim.staff import SIM_NOTE, Api, adherence_from_slot_states
from dispenser_sim.truth import Truth
from dosewatch.clock import FakeClock
from dosewatch.db import registry
from service.cli import app as cli
from service.sim_history import HistoryRefused, run_history
from tests.auth_helpers import token

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def api(pool: ConnectionPool) -> Iterator[Api]:
    with TestClient(
        create_app(pool, FakeClock(NOW)), headers={"Authorization": f"Bearer {token(pool)}"}
    ) as http:
        yield Api(http)


def count(pool: ConnectionPool, sql: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(next(iter(row.values())))  # type: ignore[attr-defined]


def test_demo_fleet_history_reconciles_and_the_cli_agrees(
    pool: ConnectionPool, api: Api, database_url: str, tmp_path: Path
) -> None:
    fleet = load_fleet("demo")
    truth = run_history(pool, fleet, 4, now=NOW, truth_path=tmp_path / "truth.json")

    assert check(api, truth) == []
    # The service's own records, made by its own code: events, slot states, alarms, refills.
    assert count(pool, "SELECT count(*) FROM dose_events") > 100
    assert count(pool, "SELECT count(*) FROM quarantine") == 0
    assert count(pool, "SELECT count(*) FROM alarms WHERE kind = 'missed_dose'") > 0
    assert count(pool, "SELECT count(*) FROM alarms WHERE kind = 'device_fault'") > 0
    # Marked as simulated, and nothing left that could page anyone.
    assert count(pool, f"SELECT count(*) FROM patients WHERE note NOT LIKE '{SIM_NOTE}%'") == 0
    assert count(pool, "SELECT count(*) FROM alarms WHERE resolved_at IS NULL") == 0
    # Adherence as the service's states give it is what really happened.
    until = NOW - timedelta(hours=2)
    rate, _ = adherence_from_slot_states(api, truth.dispensers, truth.start, until)
    closed = [d for d in truth.doses.values() if truth.start <= d.due < until]
    counted = [d for d in closed if not (d.outcome == "away" and d.absence_entered)]
    assert rate == sum(d.outcome == "taken" for d in counted) / len(counted)
    assert 0.5 < rate < 1.0

    runner = CliRunner()
    env = {"DOSEWATCH_DATABASE_URL": database_url}
    ok = runner.invoke(cli, ["sim", "check", "--truth", str(tmp_path / "truth.json")], env=env)
    assert ok.exit_code == 0, ok.output
    assert "0 differences" in ok.output

    # Doctor the truth: a dose really taken "was missed", a missed one "was taken".
    taken = next(d for d in truth.doses.values() if d.outcome == "taken" and d.due < NOW)
    missed = next(
        d
        for d in truth.doses.values()
        if d.outcome == "missed" and d.window_end < NOW - timedelta(hours=1)
    )
    truth.doses[Truth.key(taken.dispenser_id, taken.due)] = dataclasses.replace(
        taken, outcome="missed", deliveries=[("dose_not_taken", taken.window_end)]
    )
    truth.doses[Truth.key(missed.dispenser_id, missed.due)] = dataclasses.replace(
        missed, outcome="taken", deliveries=[("dose_taken", missed.due + timedelta(minutes=3))]
    )
    truth.save(tmp_path / "doctored.json")
    bad = runner.invoke(cli, ["sim", "check", "--truth", str(tmp_path / "doctored.json")], env=env)
    assert bad.exit_code == 1, bad.output
    assert "missed_alarm" in bad.output and "false_alarm" in bad.output
    assert "wrong_state" in bad.output


def test_history_refuses_a_database_with_real_patients_unless_told(
    pool: ConnectionPool, tmp_path: Path
) -> None:
    with pool.connection() as conn, conn.transaction():
        registry.create_patient(
            conn, name="Real Person", phone="+46 90 111 2222", address=None, note=None
        )
    fleet = load_fleet("demo")
    small = dataclasses.replace(fleet, dispensers=fleet.dispensers[:2])
    with pytest.raises(HistoryRefused, match="did not make"):
        run_history(pool, small, 1, now=NOW)
    truth = run_history(pool, small, 1, now=NOW, allow_foreign=True)
    assert truth.dispensers == [d.id for d in small.dispensers]
    with pytest.raises(HistoryRefused, match="exist already"):
        run_history(pool, small, 1, now=NOW, allow_foreign=True)
