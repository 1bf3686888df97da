"""Acceptance: an offline-prone dispenser replays a day of buffered events in reverse order and
twice, and leaves no false missed-dose alarm for the doses it did give.

Everything real but the clock: a Mosquitto with the project's configuration (every dispenser
with its own password, the ACL), the virtual dispensers as paho clients (Last Will, retained
``online`` and ``config``), the gateway's MQTT adapter, the alarm jobs' functions and the public
API, all on one FakeClock that the simulator moves (no sleeping for a window). While the
dispenser is cut off its doses go ``unknown``; after the replay they are ``taken_late`` with the
alarms cleared, and ``sim check`` (the reconciliation, through the API) finds 0 differences.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dispenser_sim.broker import ProjectBroker, mosquitto_binary
from dispenser_sim.engine import Engine
from dispenser_sim.profiles import Fleet, parse_fleet
from dispenser_sim.reconcile import check, table
from dispenser_sim.staff import Api, ApiStaff, set_up_fleet
from dispenser_sim.truth import Truth
from dosewatch.clock import FakeClock
from dosewatch.config import parse_mqtt_url
from gateway.mqtt import Gateway
from service.sim_history import FakeTicker, ServiceJobs
from service.sim_live import MqttTransport
from tests.auth_helpers import token
from tests.conftest import wait_for

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")

TWO = [{"time": "08:00", "window_min": 45}, {"time": "20:00", "window_min": 45}]


def small_fleet(profiles: dict[str, dict[str, Any]], seed: int = 5) -> Fleet:
    """One dispenser per profile, the 08:00 + 20:00 schedule, 10-minute heartbeats."""
    return parse_fleet(
        {
            "name": "e2e",
            "seed": seed,
            "id_prefix": "SIMX",
            "heartbeat_min": 10,
            "schedules": {"two": {"doses": TWO}},
            "profiles": profiles,
            "groups": [{"count": 1, "profile": p, "schedules": ["two"]} for p in profiles],
        }
    )


@dataclass
class Rig:
    engine: Engine
    api: Api
    truth: Truth
    clock: FakeClock
    broker: ProjectBroker
    gateway: Gateway
    transport: MqttTransport

    def check(self) -> list[Any]:
        diffs = check(self.api, self.truth)
        print(table(diffs))
        return diffs


@contextmanager
def sim_rig(pool: ConnectionPool, clock: FakeClock, tmp_path: Path, fleet: Fleet) -> Iterator[Rig]:
    users = {"gateway": uuid.uuid4().hex, **{d.id: uuid.uuid4().hex for d in fleet.dispensers}}
    with (
        ProjectBroker(tmp_path / "broker", users) as broker,
        TestClient(
            create_app(pool, clock, default_timezone=fleet.timezone),
            headers={"Authorization": f"Bearer {token(pool)}"},
        ) as http,
    ):
        api = Api(http)
        start = clock.now()
        set_up_fleet(api, fleet, start, "e2e")
        gw = Gateway(
            parse_mqtt_url(broker.url("gateway")),
            pool,
            clock,
            client_id=f"gw-sim-{uuid.uuid4().hex[:6]}",
            session_expiry_s=300,
            downlink_interval_s=0.2,
        )
        gw.start()
        target = [0]

        def stored(n: int) -> None:
            target[0] += n
            wait_for(lambda: gw.processed >= target[0], timeout=30, what=f"{target[0]} stored")

        transport = MqttTransport(
            parse_mqtt_url(broker.url("gateway")), {d.id: users[d.id] for d in fleet.dispensers},
            stored=stored,
        )  # fmt: skip
        truth = Truth("e2e", fleet.name, fleet.seed, start)
        engine = Engine(
            fleet,
            transport,
            FakeTicker(clock),
            truth,
            staff=ApiStaff(api, nurse_after=None),
            hooks=[ServiceJobs(pool, clock, None)],
        )
        try:
            # Each device waits on connect for its retained config, which the gateway's
            # down-link publishes for the schedules just saved.
            engine.start()
            yield Rig(engine, api, truth, clock, broker, gw, transport)
        finally:
            transport.close()
            gw.stop()


def slot_state(api: Api, dispenser_id: str, due: Any) -> str:
    slots = api.slots(dispenser_id, due - timedelta(minutes=1), due + timedelta(minutes=1))
    assert len(slots) == 1, slots
    return str(slots[0]["state"])


def test_offline_day_replayed_in_reverse_twice_leaves_no_false_alarm(
    pool: ConnectionPool, clock: FakeClock, tmp_path: Path
) -> None:
    fleet = small_fleet(
        {
            "punctual": {"lateness_median_min": 2},
            "offline_prone": {
                "lateness_median_min": 3,
                "replay_order": "reverse",
                "replay_twice_rate": 1.0,
                "clock_offset_s": 70,  # a device clock more than a minute fast
                "clock_drift_s_per_day": 20,
            },
            "forgetful": {"miss_rate": 1.0},
        }
    )
    punctual, offline, forgetful = (d.id for d in fleet.dispensers)
    with sim_rig(pool, clock, tmp_path, fleet) as rig:
        start = clock.now()  # 06:50 UTC, 07:50 in Umeå: the 08:00 dose is 10 minutes away
        rig.engine.run_until(start + timedelta(minutes=2))
        rig.engine.cut_network(offline, hours=24)
        rig.engine.run_until(start + timedelta(hours=13))

        # Cut off: both of the day's doses were given, but the service cannot know yet.
        doses = [d for d in rig.truth.doses.values() if d.dispenser_id == offline]
        given = sorted((d.due, d.outcome) for d in doses if d.due < start + timedelta(hours=13))
        assert [outcome for _, outcome in given] == ["taken", "taken"]
        day = [due for due, _ in given]
        assert [slot_state(rig.api, offline, due) for due in day] == ["unknown", "unknown"]
        open_alarms = {(a["dispenser_id"], a["kind"], a["cleared_at"]) for a in rig.api.alarms()}
        assert (offline, "dose_status_unknown", None) in open_alarms
        assert (forgetful, "missed_dose", None) in open_alarms

        rig.engine.run_until(start + timedelta(hours=26))

    replays = [r for r in rig.truth.replays if r[0] == offline]
    assert len(replays) == 1
    _, _, count, order, twice = replays[0]
    assert (order, twice) == ("reverse", True) and count >= 4  # presented + taken, twice a day
    assert [slot_state(rig.api, offline, due) for due in day] == ["taken_late", "taken_late"]
    cleared = [
        a for a in rig.api.alarms() if a["dispenser_id"] == offline and a["slot_id"] is not None
    ]
    assert len(cleared) == 2 and all(a["cleared_at"] is not None for a in cleared)
    assert all(slot_state(rig.api, punctual, due) == "taken" for due in day)
    assert rig.check() == []


def test_a_dose_missed_while_offline_turns_from_unknown_to_missed_when_replayed(
    pool: ConnectionPool, clock: FakeClock, tmp_path: Path
) -> None:
    """Issue 13: an unknown resolved by a replayed event counts as what it turned out to be.
    The 08:00 window closes while the line is cut (unknown, dose_status_unknown alarm); the
    device's own ``dose_not_taken``, replayed when the line is back, makes the slot missed and
    leaves that alarm standing (see dosewatch.domain.slots); sim check allows only missed."""
    fleet = small_fleet({"forgetful": {"miss_rate": 1.0}})
    forgetful = fleet.dispensers[0].id
    with sim_rig(pool, clock, tmp_path, fleet) as rig:
        start = clock.now()  # 06:50 UTC; the 08:00 window is 07:00–07:45 UTC
        rig.engine.run_until(start + timedelta(minutes=2))
        rig.engine.cut_network(forgetful, hours=3)
        rig.engine.run_until(start + timedelta(hours=2))
        due = start + timedelta(minutes=10)
        assert slot_state(rig.api, forgetful, due) == "unknown"
        rig.engine.run_until(start + timedelta(hours=14))
    assert [r[2] for r in rig.truth.replays if r[0] == forgetful] == [2]  # presented, not taken
    assert slot_state(rig.api, forgetful, due) == "missed"
    [alarm] = [
        a for a in rig.api.alarms() if a["dispenser_id"] == forgetful and a["slot_id"] is not None
        and datetime.fromisoformat(a["opened_at"]) < start + timedelta(hours=2)
    ]  # fmt: skip
    assert (alarm["kind"], alarm["cleared_at"]) == ("dose_status_unknown", None)
    assert rig.check() == []
