"""Device alarm conditions, one rule per row, on an injected 'now'."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dosewatch.domain.device_alarms import Snapshot, conditions

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FINE = Snapshot(
    dispenser_id="DSP-1",
    offline=False,
    next_due_at=NOW + timedelta(hours=1),
    next_due_critical=False,
    on_mains=True,
    power_lost_since=None,
    battery_pct=90,
    temperature_c=21.0,
    doses_left=20,
    doses_next_48h=4,
    empty_at=None,
    schedule_version=3,
    schedule_set_at=NOW - timedelta(days=1),
    applied_version=3,
)
MIN = timedelta(minutes=1)


def kinds(s: Snapshot) -> list[tuple[str, str]]:
    return [(c.kind, c.priority) for c in conditions(s, NOW)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, []),
        ({"offline": True}, [("dispenser_offline", "medium")]),
        ({"offline": True, "next_due_critical": True}, [("dispenser_offline", "high")]),
        (
            {"offline": True, "next_due_at": NOW + timedelta(hours=2)},
            [("dispenser_offline", "medium")],
        ),
        ({"offline": True, "next_due_at": NOW + timedelta(hours=2) + MIN}, []),
        ({"offline": True, "next_due_at": None}, []),
        ({"on_mains": False, "power_lost_since": NOW - 30 * MIN}, [("power_lost", "medium")]),
        ({"on_mains": False, "power_lost_since": NOW - 29 * MIN}, []),
        ({"battery_pct": 19}, [("battery_low", "low")]),
        ({"battery_pct": 20}, []),
        ({"temperature_c": 25.0}, []),
        ({"temperature_c": 25.5}, [("temperature", "medium")]),
        ({"temperature_c": 14.9}, [("temperature", "medium")]),
        ({"doses_left": 0}, [("empty", "high")]),
        ({"doses_left": 0, "doses_next_48h": 0}, []),  # nothing due: empty is not urgent
        ({"doses_left": 3, "empty_at": NOW + timedelta(hours=47)}, [("refill_needed", "low")]),
        ({"doses_left": 3, "empty_at": NOW + timedelta(hours=49)}, []),
        ({"applied_version": 2}, [("schedule_not_applied", "medium")]),
        ({"applied_version": 2, "schedule_set_at": NOW - 29 * MIN}, []),
        ({"applied_version": None}, [("schedule_not_applied", "medium")]),
    ],
)
def test_each_condition(change: dict, expected: list[tuple[str, str]]) -> None:
    assert kinds(replace(FINE, **change)) == expected
