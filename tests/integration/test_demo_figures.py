"""The demo's manager figures are the service's own, computed from the demo's own slots.

The demo's set-up (its three patients, the sign-ins) and its history (the Umeå fleet, 30 days,
through the gateway's writer, the sweeps and the API, then finished: alarms handled, the
adherence rollup brought up to date) are made by the demo's own code; the figures are then read
from the reports API as the demo's manager reads them. Nothing here writes a row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dispenser_sim.profiles import load_fleet
from dosewatch.clock import FakeClock
from dosewatch.config import ConfigError
from service import demo
from service.demo_fleet import make_history
from tests.auth_helpers import sign_in

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _manager(pool: ConnectionPool, lines: list[str]) -> TestClient:
    """Signed in with the demo's own printed manager sign-in."""
    creds = {ln.split()[3]: ln.split()[5] for ln in lines if ln.startswith("Sign in as ")}
    client = TestClient(create_app(pool, FakeClock(NOW)), base_url="https://testserver")
    sign_in(client, "demo-manager", creds["demo-manager"])
    return client


def test_the_demos_manager_figures_are_computed_and_believable(pool: ConnectionPool) -> None:
    with pool.connection() as conn, conn.transaction():
        demo.refuse_unfit(conn)
        demo.set_up(conn, NOW, "Europe/Stockholm", timedelta(hours=48))
        lines = demo.sign_in(conn, NOW)
    history = make_history(pool, load_fleet(demo.FLEET), demo.HISTORY_DAYS, NOW, wall=lambda: NOW)
    period = {"from": "2026-10-24", "to": "2026-11-22"}  # the 30 whole days of history

    with _manager(pool, lines) as http:
        town: dict[str, Any] = http.get("/api/v1/reports/municipality", params=period).json()
        alarms: dict[str, Any] = http.get("/api/v1/reports/alarms", params=period).json()
        money: dict[str, Any] = http.get("/api/v1/reports/economics", params=period).json()
    figures = town["figures"]
    print(f"municipality {figures}\nalarms {alarms}\neconomics {money}")

    # Adherence as the service computes it from the slots, inside the Umeå calibration.
    assert 99.2 <= figures["taking_adherence_pct"] <= 99.8
    assert figures["patients"] == len(history.truth.dispensers)
    assert figures["expected"] > 8000 and figures["missed"] + figures["unknown"] > 0
    assert figures["taken_late"] > 0 and figures["suspended"] > 0  # late reports, hospital stays
    assert {t["name"] for t in town["teams"]} >= {"Umeå hemtjänst öst", "Umeå hemtjänst väst"}
    assert len(town["weekly"]) >= 5
    # Alarms opened, acknowledged and resolved by the history's night nurse.
    assert alarms["alarms"] > 0 and alarms["alarms_per_100_patient_days"] > 0
    assert alarms["time_to_acknowledge"]["count"] > 0 and alarms["time_to_resolve"]["count"] > 0
    assert sum(o["count"] for o in alarms["outcomes"]) > 0
    # Economics from the doses really dispensed.
    assert money["doses_dispensed"] > 8000 and money["visits_avoided"] > 0
    assert money["dispenser_months"] > 90 and money["net_sek"] != 0


def test_the_demo_refuses_a_database_with_other_dispensers(pool: ConnectionPool) -> None:
    history = make_history(pool, load_fleet("demo"), 1, NOW, wall=lambda: NOW)
    assert history.truth.dispensers
    with pool.connection() as conn, pytest.raises(ConfigError, match="database of its own"):
        demo.refuse_unfit(conn)


def test_the_history_catches_up_and_leaves_the_demo_patients_alarms_open(
    pool: ConnectionPool,
) -> None:
    """The history runs on to the wall clock's minute and sweeps there, so the demo's own dose
    (due a minute after start, nobody connected here) is closed by then; its night nurse
    handles only the fleet's alarms, so the demo's stays open for the people watching."""
    with pool.connection() as conn, conn.transaction():
        demo.set_up(conn, NOW, "Europe/Stockholm", timedelta(hours=48))
    later = NOW + timedelta(minutes=4, seconds=30)
    history = make_history(pool, load_fleet("demo"), 1, NOW, wall=lambda: later)
    assert history.engine.now == NOW + timedelta(minutes=4)  # never past the wall clock
    with pool.connection() as conn:
        slots = conn.execute(
            "SELECT dispenser_id, state, closed_at FROM dose_slots"
            " WHERE dispenser_id LIKE 'DEMO-00_' AND due_at < %s",
            (later,),
        ).fetchall()
        alarms = conn.execute(
            "SELECT dispenser_id, kind, opened_at, resolved_at FROM alarms"
            " WHERE dispenser_id = ANY(%s) AND slot_id IS NOT NULL",
            ([d for d, *_ in demo.DEMO_FLEET],),
        ).fetchall()
        unresolved_fleet = conn.execute(
            "SELECT count(*) AS n FROM alarms WHERE resolved_at IS NULL"
            " AND NOT (dispenser_id = ANY(%s))",
            ([d for d, *_ in demo.DEMO_FLEET],),
        ).fetchone()
    assert len(slots) == 3 and all(s["state"] != "pending" for s in slots), slots
    assert all(s["closed_at"] <= later for s in slots)
    assert len(alarms) == 3 and all(a["resolved_at"] is None for a in alarms), alarms
    assert all(a["opened_at"] <= later for a in alarms)
    assert unresolved_fleet is not None and unresolved_fleet["n"] == 0
