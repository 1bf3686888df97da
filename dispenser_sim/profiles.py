"""Behaviour profiles and fleet files, as data.

A fleet file is TOML. TOML rather than YAML because ``tomllib`` is in the standard library (no
new dependency for a file every demo and drill reads), and TOML has no implicit typing traps:
``no`` stays a string, ``08:00`` must be quoted, ``0.5`` is a float. A fleet names its
profiles (``[profiles.<name>]``, any field of :class:`Profile`, the rest default), its
schedules (``[schedules.<name>]``, the API's ``doses``), its teams and its groups
(``[[groups]]``: how many dispensers, which profile, which schedules in turn, which team).

Every random choice of a run comes from the fleet's one ``seed``: each dispenser draws from
its own stream, derived from the seed, its id and the day (:func:`rng_for`), so planning one
dispenser or one day never shifts another's draws and a run repeats exactly.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

REPLAY_ORDERS = ("oldest_first", "reverse", "shuffle", "any")
FLEETS = Path(__file__).resolve().parent / "fleets"


class FleetError(ValueError):
    """A fleet file that cannot be used, with the reason."""


@dataclass(frozen=True)
class Profile:
    """How one kind of patient and dispenser behaves. Rates are per dose or per day."""

    lateness_median_min: float = 2.0  # minutes from presentation to taking (log-normal)
    lateness_sigma: float = 0.5
    miss_rate: float = 0.0  # per dose: the patient does not come
    evening_miss_factor: float = 1.0  # miss_rate times this for doses due at 17:00 or later
    offline_per_day: float = 0.0  # chance that a network outage starts on a given day
    offline_hours: tuple[float, float] = (1.0, 6.0)
    # oldest_first (the protocol's rule), reverse, shuffle, or any (reverse or shuffle, drawn)
    replay_order: str = "oldest_first"
    replay_twice_rate: float = 0.0  # chance that a whole replay is sent again
    clock_offset_s: float = 0.0  # the device clock at the start of a run
    clock_drift_s_per_day: float = 0.0
    jam_rate: float = 0.0  # per dose: the dose cannot be dispensed
    power_cuts_per_day: float = 0.0
    power_cut_hours: tuple[float, float] = (0.1, 1.0)
    battery_drain_pct_per_h: float = 5.0
    temperature_excursions_per_day: float = 0.0
    excursion_hours: tuple[float, float] = (1.0, 3.0)
    excursion_c: float = 28.0
    help_per_day: float = 0.0
    hospital_stays_per_month: float = 0.0
    hospital_days: tuple[int, int] = (2, 6)
    absence_entered_rate: float = 1.0  # share of stays that staff enter as an absence

    @classmethod
    def from_toml(cls, name: str, data: dict[str, Any]) -> Profile:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise FleetError(f"profile {name!r}: unknown field(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            default = getattr(cls(), key)
            if isinstance(default, tuple):
                if not isinstance(value, list) or len(value) != 2:
                    raise FleetError(f"profile {name!r}: {key} must be [low, high]")
                values[key] = (type(default[0])(value[0]), type(default[1])(value[1]))
            elif isinstance(default, str):
                if value not in REPLAY_ORDERS:
                    raise FleetError(f"profile {name!r}: {key} must be one of {REPLAY_ORDERS}")
                values[key] = value
            elif isinstance(value, int | float) and not isinstance(value, bool):
                values[key] = float(value)
            else:
                raise FleetError(f"profile {name!r}: {key} must be a number")
        profile = cls(**values)
        if profile.power_cut_hours[1] * profile.battery_drain_pct_per_h >= 95:
            # A flat battery would switch the device off mid-run: not modelled (yet).
            raise FleetError(f"profile {name!r}: the longest power cut would flatten the battery")
        return profile


@dataclass(frozen=True)
class DispenserSpec:
    id: str
    profile_name: str
    profile: Profile
    schedule_name: str
    doses: tuple[dict[str, Any], ...]  # as the API's schedule takes them
    team: str | None
    patient_name: str


@dataclass(frozen=True)
class Fleet:
    name: str
    seed: int
    timezone: str
    dispensers: tuple[DispenserSpec, ...]
    teams: tuple[str, ...] = ()
    refill_days: int = 14
    supply_days: int = 21  # the pharmacist fills the dispenser for this many days
    heartbeat_min: int = 5  # live runs: the protocol's 5 minutes
    # History thins the heartbeats and runs the alarm jobs with a matching offline rule
    # (DOSEWATCH_OFFLINE_AFTER_MIN): four times fewer status rows to write. Nothing else
    # changes, because every simulated outage announces itself with the Last Will.
    history_heartbeat_min: int = 55
    history_offline_after_min: int = 60
    profiles: dict[str, Profile] = field(default_factory=dict)

    def doses_per_day(self) -> float:
        return sum(len(d.doses) for d in self.dispensers) / max(1, len(self.dispensers))


FIRST_NAMES = ("Astrid", "Bertil", "Carin", "Dagny", "Evert", "Frida", "Gösta", "Hedvig", "Ingvar")
LAST_NAMES = ("Lindqvist", "Nyström", "Holmberg", "Öberg", "Sjöberg", "Lundin", "Forsberg")


def rng_for(seed: int, dispenser_id: str, day: date | None = None, what: str = "") -> random.Random:
    """The random stream of one dispenser (and day, and purpose), derived from the fleet seed."""
    return random.Random(f"{seed}/{dispenser_id}/{day.isoformat() if day else '-'}/{what}")


def load_fleet(path: str | Path) -> Fleet:
    """Read a fleet file; a bare name (``demo``, ``umea``) means a shipped one."""
    p = Path(path)
    if not p.suffix and not p.exists():
        p = FLEETS / f"{p.name}.toml"
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FleetError(f"{p}: {exc}") from None
    return parse_fleet(data, str(p))


def parse_fleet(data: dict[str, Any], where: str = "fleet") -> Fleet:
    try:
        profiles = {n: Profile.from_toml(n, v) for n, v in data.get("profiles", {}).items()}
        schedules = {n: tuple(v["doses"]) for n, v in data.get("schedules", {}).items()}
        teams = tuple(t["name"] for t in data.get("teams", []))
        seed = data["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise FleetError(
                f"{where}: seed must be an integer (every random choice comes from it)"
            )
        specs: list[DispenserSpec] = []
        for g, group in enumerate(data["groups"]):
            profile_name = group["profile"]
            if profile_name not in profiles:
                raise FleetError(f"group {g}: no profile {profile_name!r}")
            names = group["schedules"]
            for name in names:
                if name not in schedules:
                    raise FleetError(f"group {g}: no schedule {name!r}")
            team = group.get("team")
            if team is not None and team not in teams:
                raise FleetError(f"group {g}: no team {team!r}")
            for i in range(int(group["count"])):
                n = len(specs) + 1
                rnd = random.Random(f"{seed}/name/{n}")
                specs.append(
                    DispenserSpec(
                        id=f"{data.get('id_prefix', 'SIM')}-{n:05d}",
                        profile_name=profile_name,
                        profile=profiles[profile_name],
                        schedule_name=names[i % len(names)],
                        doses=schedules[names[i % len(names)]],
                        team=team,
                        patient_name=f"{rnd.choice(FIRST_NAMES)} {rnd.choice(LAST_NAMES)}",
                    )
                )
        return Fleet(
            name=str(data["name"]),
            seed=seed,
            timezone=str(data.get("timezone", "Europe/Stockholm")),
            dispensers=tuple(specs),
            teams=teams,
            refill_days=int(data.get("refill_days", 14)),
            supply_days=int(data.get("supply_days", 21)),
            heartbeat_min=int(data.get("heartbeat_min", 5)),
            history_heartbeat_min=int(data.get("history_heartbeat_min", 55)),
            history_offline_after_min=int(data.get("history_offline_after_min", 60)),
            profiles=profiles,
        )
    except KeyError as exc:
        raise FleetError(f"{where}: missing {exc}") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FleetError):
            raise
        raise FleetError(f"{where}: {exc}") from None
