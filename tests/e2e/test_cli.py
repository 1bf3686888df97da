"""The ``dosewatch`` command as a user runs it: clear one-line errors, and ``run`` end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import ConnectionPool

from dispenser_sim.messages import event
from dosewatch.config import MqttUrl
from service.embedded import free_port
from tests.conftest import wait_for
from tests.helpers import add_dispenser, slot_states


def dosewatch(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DOSEWATCH_DATABASE_URL": "mysql://root@localhost/x"}, "DOSEWATCH_DATABASE_URL"),
        (
            {"DOSEWATCH_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"},
            "cannot connect to PostgreSQL",
        ),
        ({"DOSEWATCH_MQTT_URL": "http://broker"}, "DOSEWATCH_MQTT_URL"),
        ({"DOSEWATCH_TIMEZONE": "Europe/Umea"}, "DOSEWATCH_TIMEZONE"),
        ({"DOSEWATCH_HTTP_PORT": "99999"}, "DOSEWATCH_HTTP_PORT"),
    ],
)
def test_bad_configuration_is_one_clear_line(env: dict[str, str], expected: str) -> None:
    result = dosewatch("migrate", env=env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("dosewatch:")]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_broker_is_one_clear_line(database_url: str) -> None:
    result = dosewatch(
        "gateway",
        env={
            "DOSEWATCH_DATABASE_URL": database_url,
            "DOSEWATCH_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
        },
    )
    assert result.returncode == 2
    assert "cannot reach the MQTT broker" in result.stderr and "DOSEWATCH_MQTT_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_serves_the_api_ingests_and_stops_cleanly(
    pool: ConnectionPool,
    database_url: str,
    mqtt_url: MqttUrl,
    mqtt_v5: bool,
    publisher: Callable[[str, bytes], None],
) -> None:
    now = datetime.now(UTC)
    add_dispenser(
        pool,
        "DSP-RUN",
        now,
        doses=[{"time": (now + timedelta(hours=1)).strftime("%H:%M"), "window_min": 30}],
        timezone="UTC",
    )
    [due] = [d for d in slot_states(pool, "DSP-RUN") if d > now][:1]
    port = free_port()
    env = {
        **os.environ,
        "DOSEWATCH_DATABASE_URL": database_url,
        "DOSEWATCH_MQTT_URL": f"mqtt://{mqtt_url.host}:{mqtt_url.port}",
        "DOSEWATCH_MQTT_PROTOCOL": "auto" if mqtt_v5 else "3.1.1",
        "DOSEWATCH_MQTT_CLIENT_ID": f"dosewatch-run-test-{port}",
        "DOSEWATCH_MQTT_SESSION_EXPIRY_S": "30",
        "DOSEWATCH_HTTP_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(healthy, timeout=30, what="dosewatch run to serve /healthz")
        publisher(
            "dosewatch/v1/dispensers/DSP-RUN/events",
            event("DSP-RUN", 1, "dose_taken", due, dose_due_at=due),
        )
        wait_for(lambda: slot_states(pool, "DSP-RUN")[due] == "taken", what="the event stored")
        url = f"http://127.0.0.1:{port}/api/v1/dispensers/DSP-RUN/events"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url)
        assert refused.value.code == 401  # the API needs a caller
        made = dosewatch(
            "token", "create", "--name", "run-test", "--role", "manager",
            env={"DOSEWATCH_DATABASE_URL": database_url},
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        assert made.stdout == f"{token}\n"  # the token alone on stdout
        signed = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(signed) as r:
            assert b"dose_taken" in r.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
