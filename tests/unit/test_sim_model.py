"""The simulator's pure parts: fleet files, seeded behaviour, the device's plan, expected states."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dispenser_sim.device import DeviceConfig, SimDevice
from dispenser_sim.profiles import FleetError, Profile, load_fleet, parse_fleet
from dispenser_sim.truth import DoseTruth, Truth, expected_states

T = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
CONFIG = json.dumps(
    {
        "v": 1,
        "dispenser_id": "X",
        "version": 3,
        "timezone": "Europe/Stockholm",
        "doses": [{"time": "08:00", "window_min": 45}, {"time": "20:00", "window_min": 45}],
        "valid_from": "2026-01-01",
    }
).encode()


def test_shipped_fleets_load_and_umea_is_calibrated_as_specified() -> None:
    umea = load_fleet("umea")
    assert len(umea.dispensers) == 100
    assert 2.9 <= umea.doses_per_day() <= 3.1
    assert umea.refill_days == 14
    assert len({d.id for d in umea.dispensers}) == 100
    demo = load_fleet("demo")
    assert {d.profile_name for d in demo.dispensers} >= {"punctual", "offline_prone", "jam_prone"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"profiles": {"p": {"miss_rat": 0.1}}}, "unknown field"),
        ({"profiles": {"p": {"replay_order": "sideways"}}}, "replay_order"),
        ({"profiles": {"p": {"offline_hours": 3}}}, "[low, high]"),
        ({"groups": [{"count": 1, "profile": "nope", "schedules": ["s"]}]}, "no profile"),
        ({"seed": None}, "seed"),
    ],
)
def test_a_bad_fleet_file_says_what_is_wrong(change: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "name": "f",
        "seed": 1,
        "schedules": {"s": {"doses": [{"time": "08:00", "window_min": 45}]}},
        "profiles": {"p": {}},
        "groups": [{"count": 1, "profile": "p", "schedules": ["s"]}],
    }
    with pytest.raises(FleetError, match=message.replace("[", r"\[")):
        parse_fleet({**base, **change})


def test_a_fleet_file_that_is_not_toml_is_a_fleet_error(tmp_path: Path) -> None:
    bad = tmp_path / "f.toml"
    bad.write_text("name = ")
    with pytest.raises(FleetError):
        load_fleet(bad)


def _device(profile: Profile, seed: int = 1) -> SimDevice:
    fleet = load_fleet("demo")
    spec = fleet.dispensers[0]
    from dataclasses import replace

    dev = SimDevice(replace(spec, profile=profile), seed, T - timedelta(days=1), doses_left=40)
    config = DeviceConfig.parse(CONFIG)
    assert config is not None
    dev.config = config
    return dev


def test_one_seed_repeats_a_run_exactly_and_another_seed_does_not() -> None:
    p = Profile(miss_rate=0.3, offline_per_day=0.5, jam_rate=0.1, help_per_day=0.5)
    days = [date(2026, 11, d) for d in range(1, 29)]
    a = [h for d in days for h in _device(p, 1).plan_day(d)]
    b = [h for d in days for h in _device(p, 1).plan_day(d)]
    c = [h for d in days for h in _device(p, 2).plan_day(d)]
    assert a == b
    assert a != c
    # The messages too: event ids come from the same stream.
    da, db = _device(p, 1), _device(p, 1)
    assert [o.payload for h in a for o in da.act(h)] == [o.payload for h in b for o in db.act(h)]


def test_doses_follow_the_config_across_the_dst_change() -> None:
    config = DeviceConfig.parse(CONFIG)
    assert config is not None
    start = datetime(2026, 10, 24, tzinfo=UTC)
    slots = config.slots(start, start + timedelta(days=2))
    # 08:00 local is 06:00 UTC in summer time, 07:00 UTC after the change on 25 October.
    assert [s[0].strftime("%d %H:%M") for s in slots] == [
        "24 06:00", "24 18:00", "25 07:00", "25 19:00",
    ]  # fmt: skip
    assert all(w - d == timedelta(minutes=45) for d, w in slots)
    assert DeviceConfig.parse(b"{not json") is None


def test_a_late_patient_after_the_device_window_is_a_miss_and_doses_left_counts_down() -> None:
    dev = _device(Profile(lateness_median_min=500, lateness_sigma=0.01))
    plan = dev.plan_dose(T, T + timedelta(minutes=45))
    assert [h.kind for h in plan] == ["present", "not_taken"]
    dev = _device(Profile(lateness_median_min=5, lateness_sigma=0.01))
    plan = dev.plan_dose(T, T + timedelta(minutes=45))
    assert [h.kind for h in plan] == ["present", "take"]
    sent = [json.loads(o.payload) for h in plan for o in dev.act(h)]
    assert [m["type"] for m in sent] == ["dose_presented", "dose_taken"]
    assert sent[1]["doses_left"] == 39 and sent[1]["dose_due_at"] == "2026-11-23T07:00:00Z"


def test_the_device_clock_drifts() -> None:
    dev = _device(Profile(clock_offset_s=30, clock_drift_s_per_day=10))
    assert dev.device_time(dev.started + timedelta(days=3)) - (
        dev.started + timedelta(days=3)
    ) == timedelta(seconds=60)


def _dose(outcome: str, *deliveries: tuple[str, int], entered: bool = False) -> DoseTruth:
    return DoseTruth(
        "X",
        T,
        T + timedelta(minutes=45),
        outcome,
        absence_entered=entered,
        deliveries=[(k, T + timedelta(minutes=m)) for k, m in deliveries],
    )


@pytest.mark.parametrize(
    ("dose", "offline", "expected"),
    [
        (_dose("taken", ("dose_taken", 5)), False, {"taken"}),
        (_dose("taken", ("dose_taken", 45)), False, {"taken"}),  # received at the window's end
        (_dose("taken", ("dose_taken", 300), ("dose_taken", 301)), True, {"taken_late"}),
        (_dose("missed", ("dose_not_taken", 45)), False, {"missed"}),
        # Replayed after an outage: missed whether the window closed unknown or not.
        (_dose("missed", ("dose_not_taken", 300)), True, {"missed"}),
        (_dose("missed"), True, {"missed", "unknown"}),  # never reported: either is right
        (_dose("missed"), False, {"missed"}),
        (_dose("away", ("dose_not_taken", 45), entered=True), False, {"suspended"}),
        (_dose("away", ("dose_not_taken", 45)), False, {"missed"}),
    ],
)
def test_expected_states_replay_the_deliveries_through_the_slot_rules(
    dose: DoseTruth, offline: bool, expected: set[str]
) -> None:
    assert expected_states(dose, offline) == expected


def test_the_truth_survives_a_round_trip_through_its_file(tmp_path: Path) -> None:
    truth = Truth("r", "f", 3, T, T + timedelta(days=1), dispensers=["X"])
    truth.doses[Truth.key("X", T)] = _dose("taken", ("dose_taken", 5))
    truth.offline["X"] = [[T, T + timedelta(hours=1)], [T + timedelta(hours=5), None]]
    truth.occurrences.append(("X", "jam", T, T + timedelta(minutes=1)))
    truth.samples["X"] = [(T, 90, True, 21.0)]
    truth.replays.append(("X", T, 4, "reverse", True))
    truth.save(tmp_path / "t.json")
    assert Truth.load(tmp_path / "t.json") == truth
    assert truth.offline_near("X", T + timedelta(hours=6), timedelta(minutes=15))
    assert not truth.offline_near("X", T + timedelta(hours=3), timedelta(minutes=15))
