"""Two alarm processes, one SIGKILLed mid-escalation: no notification lost, none doubled.

Real processes, the real ``twilio`` client and a Twilio stand-in that takes 30 ms per create
(after recording it), so the kill lands while sends are in flight. The killed process is
restarted, as a supervisor would. Success is judged from both sides: every outbox row is sent
with a provider id, and the stand-in accepted exactly one create per provider id recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from tests.conftest import wait_for
from tests.twilio_standin import TwilioStandIn

ROOT = Path(__file__).resolve().parents[2]
TEAMS, PATIENTS_PER_TEAM = 20, 10
# All steps at once: SMS to the nurse on duty, a call to her, an SMS to the lead.
POLICY = {
    "steps": [
        {"target": "on_duty", "channels": ["sms"], "wait_min": 0},
        {"target": "on_duty", "channels": ["voice"], "wait_min": 0},
        {"target": "lead", "channels": ["sms"], "wait_min": 0},
    ],
    "repeats": 0,
}


def seed(pool: ConnectionPool) -> int:
    """Teams on duty now, one patient each with a dose whose window has just closed."""
    now = datetime.now(UTC)
    with pool.connection() as conn, conn.transaction():
        for t in range(TEAMS):
            team = conn.execute(
                "INSERT INTO teams (name, created_at) VALUES (%s, %s) RETURNING id",
                (f"team {t}", now),
            ).fetchone()
            assert team is not None
            conn.execute(
                "INSERT INTO escalation_policies VALUES (%s, 1, %s, %s, 'test')",
                (team["id"], json.dumps(POLICY), now),
            )
            for role, digit in (("primary", 1), ("lead", 2)):
                nurse = conn.execute(
                    "INSERT INTO nurses (team_id, name, phone, created_at)"
                    " VALUES (%s, %s, %s, %s) RETURNING id",
                    (team["id"], f"{role} {t}", f"+4670{digit}{t:06d}", now),
                ).fetchone()
                assert nurse is not None
                conn.execute(
                    "INSERT INTO shifts (team_id, nurse_id, starts_at, ends_at, role)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (
                        team["id"],
                        nurse["id"],
                        now - timedelta(hours=1),
                        now + timedelta(hours=8),
                        role,
                    ),
                )
            for p in range(PATIENTS_PER_TEAM):
                patient = conn.execute(
                    "INSERT INTO patients (name, phone, team_id) VALUES (%s, '+46900000000', %s)"
                    " RETURNING id",
                    (f"Patient {t}-{p}", team["id"]),
                ).fetchone()
                assert patient is not None
                dispenser = f"DSP-K{t:02d}{p:02d}"
                conn.execute(
                    "INSERT INTO dispensers (id, patient_id) VALUES (%s, %s)",
                    (dispenser, patient["id"]),
                )
                conn.execute(
                    "INSERT INTO dose_slots (dispenser_id, due_at, window_end, schedule_version)"
                    " VALUES (%s, %s, %s, 1)",
                    (dispenser, now - timedelta(minutes=46), now - timedelta(seconds=1)),
                )
    return TEAMS * PATIENTS_PER_TEAM


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(latency_s=0.03) as s:
        yield s


def start_worker(database_url: str, standin: TwilioStandIn) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.alarm_worker", database_url, standin.url,
         standin.account_sid, standin.auth_token],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_killed_alarm_process_loses_and_doubles_nothing(
    pool: ConnectionPool, database_url: str, standin: TwilioStandIn
) -> None:
    alarms = seed(pool)
    a, b = start_worker(database_url, standin), start_worker(database_url, standin)
    restarted = None
    try:
        wait_for(lambda: len(standin.sms) + len(standin.calls) >= 40, what="sends under way")
        os.kill(a.pid, signal.SIGKILL)  # mid-escalation: rows claimed, sends in flight
        a.wait(timeout=10)
        time.sleep(0.5)
        restarted = start_worker(database_url, standin)

        def settled() -> bool:
            with pool.connection() as conn:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE status <> 'sent') AS open,"
                    " count(*) AS total FROM notifications"
                ).fetchone()
            return row is not None and row["total"] == alarms * 3 and row["open"] == 0

        wait_for(settled, timeout=90, what="every notification sent")
    finally:
        for proc in (a, b, restarted):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    with pool.connection() as conn:
        rows = conn.execute("SELECT provider_sid, channel, attempts FROM notifications").fetchall()
        history = conn.execute(
            "SELECT count(*) AS n FROM alarm_history WHERE action = 'escalated'"
        ).fetchone()
    recorded = {r["provider_sid"] for r in rows}
    created = [r["sid"] for r in standin.sms + standin.calls]
    # The kill left claimed rows behind, and they were taken over by asking Twilio first.
    assert any(r["method"] == "GET" for r in standin.requests)
    assert None not in recorded  # none lost: every row has the provider's id
    assert len(created) == len(set(created)) == len(recorded)  # none doubled
    assert set(created) == recorded
    assert sum(1 for r in rows if r["channel"] == "voice") == alarms
    assert history is not None and history["n"] == alarms * 3  # each step ran exactly once
