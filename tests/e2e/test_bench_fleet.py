"""bench/fleet's machinery, small: 200 dispensers, a 1-minute window, everything real.

The same code as ``python -m bench.fleet`` (a Mosquitto with the project's configuration and a
password per device, ``dosewatch gateway`` and two ``dosewatch alarms`` as child processes, the
devices on one asyncio loop in a child process of their own, then the broker-only baseline),
scaled down so it runs in a few minutes. Nothing here is timed: it checks that the service's
conclusions match what the devices really did, and that every figure of the report exists.
"""

from __future__ import annotations

import argparse
import math

import pytest

from bench import fleet
from dispenser_sim.broker import mosquitto_binary
from tests import servers

pytestmark = pytest.mark.skipif(
    mosquitto_binary() is None,
    reason="the mosquitto binary is not installed (.ci/run installs it; apt install mosquitto)",
)


def test_a_small_rush_reconciles_with_no_difference_and_yields_every_figure() -> None:
    with servers.postgres_server() as (admin, _):
        args = argparse.Namespace(
            devices=200, window_min=1, miss=0.02, seed=7, lead_s=20, admin_url=admin
        )
        r = fleet.run(args)
    p, b = r["pipeline"], r["baseline"]

    # What the devices did is what the service concluded, through its public API.
    assert p["differences"] == []
    # Each device: config_applied, dose_presented, then dose_taken or dose_not_taken.
    assert p["events"] == b["events"] == 600
    assert p["events_stored"] == 600 and b["received"] == 600
    # 2 % of 200: four patients never took the dose; each has its alarm, heard on commit, with
    # its first notification queued by the same statement.
    assert p["missing"] == p["missed_alarms"] == p["alarms_heard"] == 4
    assert p["alarms_without_first_notification"] == 0
    assert p["storage"] in ("TimescaleDB", "plain PostgreSQL")

    for figure in ("stored_per_s", "lag_p50_s", "lag_p99_s", "alarm_p99_s", "alarm_max_s"):
        assert math.isfinite(p[figure]) and p[figure] >= 0, figure
    assert math.isfinite(b["lag_p99_s"]) and b["per_s"] > 0
    assert p["gauge_lag_messages_max"] >= 0 and p["status_rows"] >= 200
    expected = {"mosquitto", "gateway", "alarms 1", "alarms 2", "devices", "postgres backends"}
    assert set(p["usage"]) == expected
    for name, u in [*p["usage"].items(), *b["usage"].items()]:
        assert u is not None and u.cpu_s > 0, name

    text = fleet.report(r)
    assert "**0 differences**" in text and "| gateway |" in text and "load average" in text
