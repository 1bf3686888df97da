"""Fault drills during a fleet run; after each, reconciliation finds 0 differences.

1. One dispenser's network cut for an hour (simulated clock, as in test_sim_offline).
2. On the wall clock with one-minute windows, against the real processes (``dosewatch
   gateway``, ``dosewatch alarms``, the broker with the project's Mosquitto configuration, a
   private PostgreSQL from pgserver, never the machine's shared one), one test per drill: the
   gateway SIGKILLed and restarted, the alarm worker SIGKILLed and restarted, the broker
   restarted, PostgreSQL restarted. Each fault falls inside the first dose window, after the
   takes were sent and before the window closes; a second window follows the recovery; then
   ``sim check``. The test waits only as long as two one-minute windows last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from alarms.device import sweep_device_alarms
from dashboards.app import create_app
from dispenser_sim.broker import ProjectBroker, mosquitto_binary
from dispenser_sim.engine import Engine
from dispenser_sim.profiles import Fleet, parse_fleet
from dispenser_sim.reconcile import Difference, check, table
from dispenser_sim.staff import Api, ApiStaff, set_up_fleet
from dispenser_sim.truth import Truth
from dosewatch.clock import FakeClock, SystemClock
from dosewatch.config import parse_mqtt_url
from dosewatch.db.pool import make_pool
from service.embedded import EmbeddedPostgres
from service.sim_live import MqttTransport, WallTicker
from tests.auth_helpers import token
from tests.conftest import wait_for
from tests.e2e.test_chaos import ROOT, GatewayProcess, private_postgres  # noqa: F401
from tests.e2e.test_sim_offline import sim_rig, small_fleet

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")


def test_network_cut_for_an_hour_during_a_run(
    pool: ConnectionPool, clock: FakeClock, tmp_path: Path
) -> None:
    fleet = small_fleet(
        {"punctual": {}, "late": {"lateness_median_min": 15, "lateness_sigma": 0.1}}
    )
    late = fleet.dispensers[1].id
    with sim_rig(pool, clock, tmp_path, fleet) as rig:
        start = clock.now()
        # The cut spans the 08:00 window (07:00–07:45 UTC): the dose is taken at ~07:15,
        # reported at 07:51 when the line is back.
        rig.engine.run_until(start + timedelta(minutes=1))
        rig.engine.cut_network(late, hours=1)
        rig.engine.run_until(start + timedelta(hours=14))
    assert rig.truth.offline[late][0][1] is not None
    states = {s["state"] for s in rig.api.slots(late, start, start + timedelta(hours=2))}
    assert states == {"taken_late"}
    assert rig.check() == []


class AlarmsProcess(GatewayProcess):
    """``python -m service.cli alarms``; ready once it has recorded a job run."""

    def __init__(self, env: dict[str, str], log: Path, pool: ConnectionPool) -> None:
        super().__init__(env, log)
        self.pool = pool

    def start(self) -> None:
        self.starts += 1
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM job_runs")
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "alarms"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        out.close()

        def ran() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-2000:]
            with self.pool.connection() as conn:
                row = conn.execute("SELECT count(*) AS n FROM job_runs").fetchone()
            return bool(row and row["n"])  # type: ignore[call-overload]

        wait_for(ran, timeout=60, what="the alarm jobs to run")


# From the moment the dose times are fixed to the fleet running (API set-up, gateway, alarm
# worker, devices connected with their configs): the first dose is the first whole minute after.
SET_UP = timedelta(seconds=30)  # about 10 s on a busy 2-core machine
INTO_WINDOW = timedelta(seconds=15)  # the fault: after the takes (~5 s), before the close


def _drill_fleet(now: datetime) -> tuple[Fleet, list[datetime]]:
    """Two doses a minute apart with one-minute windows, from the first whole minute that
    leaves SET_UP; three punctual patients and one who never takes a dose."""
    tz = ZoneInfo("Europe/Stockholm")
    first = (now + SET_UP).replace(second=0, microsecond=0) + timedelta(minutes=1)
    dues = [first, first + timedelta(minutes=1)]
    doses = [{"time": d.astimezone(tz).strftime("%H:%M"), "window_min": 1} for d in dues]
    fleet = parse_fleet(
        {
            "name": "drill",
            "seed": 11,
            "id_prefix": "DRILL",
            "heartbeat_min": 1,
            "schedules": {"s": {"doses": doses}},
            "profiles": {
                "punctual": {"lateness_median_min": 0.08, "lateness_sigma": 0.2},
                "forgetful": {"miss_rate": 1.0},
            },
            "groups": [
                {"count": 3, "profile": "punctual", "schedules": ["s"]},
                {"count": 1, "profile": "forgetful", "schedules": ["s"]},
            ],
        }
    )
    return fleet, dues


@dataclass
class LiveRig:
    pg: EmbeddedPostgres
    pool: ConnectionPool
    broker: ProjectBroker
    gateway: GatewayProcess
    alarms: AlarmsProcess
    transport: MqttTransport
    api: Api
    truth: Truth
    engine: Engine
    dues: list[datetime]

    def into_first_window(self) -> None:
        """Run the fleet to the fault's moment: the first window's takes sent, still open."""
        self.engine.run_until(self.dues[0] + INTO_WINDOW)

    def finish(self) -> list[Difference]:
        """Run through the last window, wait for the sweep to close it, reconcile."""
        end = self.dues[-1] + timedelta(minutes=1, seconds=5)
        self.engine.run_until(end)
        start = self.truth.start

        def all_closed() -> bool:
            return all(
                s["state"] != "pending"
                for d in self.truth.dispensers
                for s in self.api.slots(d, start, end)
            )

        wait_for(all_closed, timeout=60, what="every window swept")
        closed = [d for d in self.truth.doses.values() if d.window_end <= end]
        assert len(closed) == len(self.dues) * len(self.truth.dispensers)
        diffs = check(self.api, self.truth, margin=timedelta(0))
        print(table(diffs))
        return diffs


@contextmanager
def live_fleet(tmp_path: Path, pg: EmbeddedPostgres, db_url: str) -> Iterator[LiveRig]:
    """The fleet of :func:`_drill_fleet` running on the wall clock against real processes."""
    pool = make_pool(db_url, max_size=4, name="drills")
    fleet, dues = _drill_fleet(datetime.now(UTC))
    users = {"gateway": uuid.uuid4().hex, **{d.id: uuid.uuid4().hex for d in fleet.dispensers}}
    broker = ProjectBroker(tmp_path / "broker", users)
    broker.start()
    env = {
        **os.environ,
        "DOSEWATCH_DATABASE_URL": db_url,
        "DOSEWATCH_MQTT_URL": broker.url("gateway"),
        "DOSEWATCH_MQTT_CLIENT_ID": "dosewatch-gateway-drill",
        "DOSEWATCH_MQTT_PROTOCOL": "5",
        "DOSEWATCH_SWEEP_INTERVAL_S": "1",
    }
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    alarms = AlarmsProcess(env, tmp_path / "alarms.log", pool)
    transport = MqttTransport(
        parse_mqtt_url(broker.url("gateway")),
        {d.id: users[d.id] for d in fleet.dispensers},
        config_wait_s=20,
    )
    try:
        with TestClient(
            create_app(pool, SystemClock()), headers={"Authorization": f"Bearer {token(pool)}"}
        ) as http:
            api = Api(http)
            start = datetime.now(UTC)
            set_up_fleet(api, fleet, start, "drill")
            gateway.start()  # publishes the configs the devices read on connect
            alarms.start()
            truth = Truth("drill", "drill", 11, start)
            truth.device_sweep_min = 0.5  # dosewatch alarms: every 30 s
            engine = Engine(
                fleet,
                transport,
                WallTicker(),
                truth,
                staff=ApiStaff(api, nurse_after=None),
                resolution=timedelta(seconds=5),
            )
            engine.start()
            running = datetime.now(UTC)
            assert running < dues[0], f"set-up took until {running}, past the first dose"
            yield LiveRig(pg, pool, broker, gateway, alarms, transport, api, truth, engine, dues)
    finally:
        transport.close()
        gateway.stop()
        alarms.stop()
        broker.stop()
        pool.close()


@pytest.fixture
def rig(tmp_path: Path, private_postgres: tuple[EmbeddedPostgres, str]) -> Iterator[LiveRig]:  # noqa: F811
    pg, url = private_postgres
    with live_fleet(tmp_path, pg, url) as r:
        yield r


def test_gateway_sigkilled_and_restarted_mid_window(rig: LiveRig) -> None:
    rig.into_first_window()
    rig.gateway.kill()  # SIGKILL: whatever it held unacknowledged comes again
    rig.gateway.start()
    assert rig.finish() == []
    assert rig.gateway.starts == 2


def test_alarm_worker_sigkilled_and_restarted_mid_window(rig: LiveRig) -> None:
    rig.into_first_window()
    assert rig.alarms.proc is not None
    rig.alarms.proc.send_signal(signal.SIGKILL)
    rig.alarms.proc.wait()
    rig.alarms.start()  # the restarted worker closes the window the killed one left open
    assert rig.finish() == []
    assert rig.alarms.starts == 2


def test_broker_restarted_mid_window(rig: LiveRig) -> None:
    """Mosquitto publishes every device's Last Will as it stops, and the devices say
    ``online = 1`` again a second later, which the gateway stores after its resumed session
    settles (gateway.session). A device sweep run every 0.2 s through that gap (the worker's
    own runs every 30 s and may fall anywhere in it) must not page anyone."""
    rig.into_first_window()
    stop = threading.Event()
    sweeps = [0]

    def sweep_often() -> None:
        while not stop.wait(0.2):
            sweep_device_alarms(rig.pool, SystemClock())
            sweeps[0] += 1

    sweeper = threading.Thread(target=sweep_often, daemon=True)
    sweeper.start()
    try:
        rig.broker.stop()
        rig.broker.start()
        wait_for(lambda: rig.transport.reconnects >= len(rig.transport.clients), timeout=30,
                 what="the dispensers to reconnect")  # fmt: skip
        wait_for(lambda: _all_online_again(rig), timeout=30, what="the fleet online again")
    finally:
        stop.set()
        sweeper.join()
    assert sweeps[0] >= 10  # the sweeper ran through the gap (an exception would end it)
    assert rig.finish() == []


def _all_online_again(rig: LiveRig) -> bool:
    """Every dispenser's Will was stored, and its ``online = 1`` after it."""
    with rig.pool.connection() as conn:
        rows = conn.execute(
            "SELECT p.dispenser_id FROM dispenser_presence p WHERE p.online"
            " AND EXISTS (SELECT 1 FROM dispenser_online_history h"
            "   WHERE h.dispenser_id = p.dispenser_id AND NOT h.online)"
        ).fetchall()
    return len(rows) == len(rig.truth.dispensers)


def test_postgres_restarted_mid_window(rig: LiveRig) -> None:
    rig.into_first_window()
    rig.pg.stop()
    rig.pg.start()
    rig.pool.check()  # this test's own pool: drop the connections the restart broke
    assert rig.finish() == []
