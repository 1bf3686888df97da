"""The self-watch: the health endpoint and metrics fail when the sweeps stop or fall behind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from alarms.jobs import recorded, sweep_missed_doses
from dashboards.app import create_app
from dosewatch.clock import FakeClock
from tests.helpers import add_dispenser

WINDOW_END = datetime(2026, 11, 23, 7, 45, tzinfo=UTC)  # 08:00 Stockholm + 45 min


@pytest.fixture
def api(pool: ConnectionPool, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(pool, clock, sweep_interval_s=5)) as client:
        yield client


def run_all_jobs(pool: ConnectionPool, clock: FakeClock) -> None:
    for job in ("sweep", "escalate", "dispatch"):
        recorded(job, pool, clock, lambda: sweep_missed_doses(pool, clock))


def test_health_fails_until_every_watched_job_has_run(
    api: TestClient, pool: ConnectionPool, clock: FakeClock
) -> None:
    r = api.get("/api/v1/health")
    assert r.status_code == 503
    assert "job 'sweep' has never run" in r.json()["problems"]
    assert r.json()["console_only"] is True
    run_all_jobs(pool, clock)
    r = api.get("/api/v1/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_health_fails_when_the_sweeps_stop(
    api: TestClient, pool: ConnectionPool, clock: FakeClock
) -> None:
    run_all_jobs(pool, clock)
    clock.advance(timedelta(seconds=30))  # 6 intervals of 5 s, but within the 30 s floor
    assert api.get("/api/v1/health").status_code == 200
    clock.advance(timedelta(seconds=1))
    r = api.get("/api/v1/health")
    assert r.status_code == 503
    assert any("last ran 31 s ago" in p for p in r.json()["problems"])
    assert "dosewatch_alarm_pipeline_healthy 0.0" in api.get("/metrics").text


def test_health_fails_when_an_overdue_slot_waits_more_than_30_s(
    api: TestClient, pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-H", clock.now())
    clock.set(WINDOW_END + timedelta(seconds=30))
    for job in ("sweep", "escalate", "dispatch"):  # stamped as run, but did no work
        recorded(job, pool, clock, lambda: None)
    assert api.get("/api/v1/health").status_code == 200  # 30 s overdue: still within the limit
    clock.advance(timedelta(seconds=1))
    for job in ("sweep", "escalate", "dispatch"):
        recorded(job, pool, clock, lambda: None)
    r = api.get("/api/v1/health")
    assert r.status_code == 503
    assert "overdue and unprocessed for 31 s" in " ".join(r.json()["problems"])
    assert "dosewatch_oldest_overdue_slot_seconds 31.0" in api.get("/metrics").text
    # The sweep catches up: healthy again.
    sweep_missed_doses(pool, clock)
    assert api.get("/api/v1/health").status_code == 200
    assert "dosewatch_alarm_pipeline_healthy 1.0" in api.get("/metrics").text
