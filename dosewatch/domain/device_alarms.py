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

from dataclasses import dataclass
from datetime import datetime, timedelta

TEMP_RANGE_C = (15.0, 25.0)
BATTERY_LOW_PCT = 20
REFILL_WITHIN = timedelta(hours=48)

# kind → priority for the occurrence kinds, by event type.
OCCURRENCES = {
    "jam": ("device_fault", "high"),  # the dose cannot come out: the next dose will be missed
    "error": ("device_fault", "medium"),
    "help_pressed": ("help_button", "high"),
}
CONDITION_KINDS = (
    "dispenser_offline",
    "power_lost",
    "battery_low",
    "temperature",
    "refill_needed",
    "empty",
    "schedule_not_applied",
)


@dataclass(frozen=True)
class Settings:
    offline_horizon: timedelta = timedelta(hours=2)  # alarm if offline and a dose is due within
    power_lost_after: timedelta = timedelta(minutes=30)
    schedule_apply_within: timedelta = timedelta(minutes=30)
    offline_after: timedelta = timedelta(minutes=15)  # silence that counts as offline


@dataclass(frozen=True)
class Snapshot:
    dispenser_id: str
    offline: bool  # by Last Will or silence (the sweep computes it the same way as for slots)
    next_due_at: datetime | None  # the next pending slot
    next_due_critical: bool
    on_mains: bool | None
    power_lost_since: datetime | None
    battery_pct: int | None
    temperature_c: float | None
    doses_left: int | None
    doses_next_48h: int  # planned slots in the next 48 h: the consumption rate
    empty_at: datetime | None  # due time of the first planned slot beyond doses_left
    schedule_version: int | None  # the server's current version
    schedule_set_at: datetime | None
    applied_version: int | None  # what the device last said it follows


@dataclass(frozen=True)
class Condition:
    kind: str
    priority: str
    detail: dict[str, object]


def conditions(s: Snapshot, now: datetime, cfg: Settings | None = None) -> list[Condition]:
    cfg = cfg or Settings()
    out: list[Condition] = []
    if s.offline and s.next_due_at is not None and s.next_due_at - now <= cfg.offline_horizon:
        priority = "high" if s.next_due_critical else "medium"
        out.append(
            Condition("dispenser_offline", priority, {"next_due_at": s.next_due_at.isoformat()})
        )
    if (
        s.on_mains is False
        and s.power_lost_since is not None
        and now - s.power_lost_since >= cfg.power_lost_after
    ):
        out.append(Condition("power_lost", "medium", {"since": s.power_lost_since.isoformat()}))
    if s.battery_pct is not None and s.battery_pct < BATTERY_LOW_PCT:
        out.append(Condition("battery_low", "low", {"battery_pct": s.battery_pct}))
    if s.temperature_c is not None and not TEMP_RANGE_C[0] <= s.temperature_c <= TEMP_RANGE_C[1]:
        out.append(Condition("temperature", "medium", {"temperature_c": s.temperature_c}))
    if s.doses_left is not None:
        if s.doses_left <= 0 and s.doses_next_48h > 0:
            out.append(Condition("empty", "high", {"doses_left": s.doses_left}))
        elif s.empty_at is not None and s.empty_at - now <= REFILL_WITHIN:
            detail = {"doses_left": s.doses_left, "empty_at": s.empty_at.isoformat()}
            out.append(Condition("refill_needed", "low", detail))
    if (
        s.schedule_version is not None
        and s.applied_version != s.schedule_version
        and s.schedule_set_at is not None
        and now - s.schedule_set_at >= cfg.schedule_apply_within
    ):
        detail = {"current": s.schedule_version, "applied": s.applied_version}
        out.append(Condition("schedule_not_applied", "medium", detail))
    return out
