"""Device alarms: which conditions of a dispenser need a nurse or a technician now (pure).

Two families:

* **Conditions** hold while a state lasts (offline with a dose coming, mains lost for longer
  than N minutes, battery low, temperature outside 15–25 °C, doses running out, the schedule
  not applied). :func:`conditions` evaluates a :class:`Snapshot`; the sweep opens an alarm for a
  condition that holds and has none, and *clears* the open alarm of one that no longer holds
  (the nurse still acknowledges and resolves it: the facts are kept apart).
* **Occurrences** are things the device reported once (a jam, an error, the help button). Each
  opens an alarm unless one of that kind is still open; they never clear by themselves.

At most one unresolved alarm per (dispenser, kind) — the database's partial unique index holds
that line even if two sweeps race.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from dosewatch.domain.alarms import AlarmKind, Priority
from dosewatch.domain.offline import OFFLINE_AFTER

TEMP_RANGE_C = (15.0, 25.0)
BATTERY_LOW_PCT = 20
REFILL_WITHIN = timedelta(hours=48)

# The occurrence kinds and their priority, by event type.
OCCURRENCES: dict[str, tuple[AlarmKind, Priority]] = {
    # The dose cannot come out: the next dose will be missed.
    "jam": (AlarmKind.DEVICE_FAULT, Priority.HIGH),
    "error": (AlarmKind.DEVICE_FAULT, Priority.MEDIUM),
    "help_pressed": (AlarmKind.HELP_BUTTON, Priority.HIGH),
}
CONDITION_KINDS = frozenset(
    {
        AlarmKind.DISPENSER_OFFLINE,
        AlarmKind.POWER_LOST,
        AlarmKind.BATTERY_LOW,
        AlarmKind.TEMPERATURE,
        AlarmKind.REFILL_NEEDED,
        AlarmKind.EMPTY,
        AlarmKind.SCHEDULE_NOT_APPLIED,
    }
)


@dataclass(frozen=True)
class Settings:
    offline_horizon: timedelta = timedelta(hours=2)  # alarm if offline and a dose is due within
    power_lost_after: timedelta = timedelta(minutes=30)
    schedule_apply_within: timedelta = timedelta(minutes=30)
    offline_after: timedelta = OFFLINE_AFTER  # silence that counts as offline


@dataclass(frozen=True)
class Snapshot:
    dispenser_id: str
    offline: bool  # for long enough to call someone: dosewatch.domain.offline.offline_for_alarm
    next_due_at: datetime | None  # the next pending slot
    next_due_critical: bool
    on_mains: bool | None
    power_lost_since: datetime | None
    battery_pct: int | None
    temperature_c: float | None
    doses_left: int | None
    doses_next_48h: int  # planned slots in the next 48 h: the consumption rate
    empty_at: datetime | None  # dosewatch.domain.supply.predicted_empty_at
    schedule_version: int | None  # the server's current version
    schedule_set_at: datetime | None
    applied_version: int | None  # what the device last said it follows


@dataclass(frozen=True)
class Condition:
    kind: AlarmKind
    priority: Priority
    detail: Mapping[str, object]


def conditions(s: Snapshot, now: datetime, cfg: Settings | None = None) -> list[Condition]:
    cfg = cfg or Settings()
    out: list[Condition] = []
    if s.offline and s.next_due_at is not None and s.next_due_at - now <= cfg.offline_horizon:
        priority = Priority.HIGH if s.next_due_critical else Priority.MEDIUM
        detail = {"next_due_at": s.next_due_at.isoformat()}
        out.append(Condition(AlarmKind.DISPENSER_OFFLINE, priority, detail))
    if (
        s.on_mains is False
        and s.power_lost_since is not None
        and now - s.power_lost_since >= cfg.power_lost_after
    ):
        out.append(
            Condition(
                AlarmKind.POWER_LOST, Priority.MEDIUM, {"since": s.power_lost_since.isoformat()}
            )
        )
    if s.battery_pct is not None and s.battery_pct < BATTERY_LOW_PCT:
        out.append(Condition(AlarmKind.BATTERY_LOW, Priority.LOW, {"battery_pct": s.battery_pct}))
    if s.temperature_c is not None and not TEMP_RANGE_C[0] <= s.temperature_c <= TEMP_RANGE_C[1]:
        out.append(
            Condition(AlarmKind.TEMPERATURE, Priority.MEDIUM, {"temperature_c": s.temperature_c})
        )
    if s.doses_left is not None:
        if s.doses_left <= 0 and s.doses_next_48h > 0:
            out.append(Condition(AlarmKind.EMPTY, Priority.HIGH, {"doses_left": s.doses_left}))
        elif s.doses_left > 0 and s.empty_at is not None and s.empty_at - now <= REFILL_WITHIN:
            refill = {"doses_left": s.doses_left, "empty_at": s.empty_at.isoformat()}
            out.append(Condition(AlarmKind.REFILL_NEEDED, Priority.LOW, refill))
    if (
        s.schedule_version is not None
        and s.applied_version != s.schedule_version
        and s.schedule_set_at is not None
        and now - s.schedule_set_at >= cfg.schedule_apply_within
    ):
        versions = {"current": s.schedule_version, "applied": s.applied_version}
        out.append(Condition(AlarmKind.SCHEDULE_NOT_APPLIED, Priority.MEDIUM, versions))
    return out
