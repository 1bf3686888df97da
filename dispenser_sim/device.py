"""One virtual dispenser: what it plans from its config and profile, and what it sends.

Pure and transport-free: :meth:`SimDevice.plan` turns a period into :class:`Happening` s (a dose
presented, taken or withdrawn, a jam, a power cut, an outage...) drawn from the dispenser's own
random stream, and :meth:`SimDevice.act` turns one happening into the protocol messages the
firmware would publish. The engine (:mod:`dispenser_sim.engine`) decides when they reach the
broker (an offline device buffers them) and records the truth.

The device follows the schedule it was *sent* (the retained ``config``), like firmware: no
config, no doses. It cannot register a take after its own window: a patient who comes later
finds the dose withdrawn (``dose_not_taken``), so late takes beyond the window are misses.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dispenser_sim.messages import event, status
from dispenser_sim.profiles import DispenserSpec, rng_for
from dosewatch.domain.protocol import TOPIC_ROOT
from dosewatch.domain.schedule import local_instant

DAY = timedelta(days=1)


@dataclass(frozen=True)
class DeviceConfig:
    version: int
    timezone: str
    doses: tuple[tuple[time, int], ...]
    valid_from: date

    @classmethod
    def parse(cls, payload: bytes) -> DeviceConfig | None:
        """A retained config as received; None for anything a device would ignore."""
        try:
            data = json.loads(payload)
            return cls(
                version=int(data["version"]),
                timezone=str(data["timezone"]),
                doses=tuple(
                    (time.fromisoformat(d["time"]), int(d["window_min"])) for d in data["doses"]
                ),
                valid_from=date.fromisoformat(data["valid_from"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def slots(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """(due, window end) of every dose due in ``[start, end)``."""
        tz = ZoneInfo(self.timezone)
        out = []
        day = max(start.astimezone(tz).date() - DAY, self.valid_from)
        while day <= end.astimezone(tz).date():
            for at, window in self.doses:
                due = local_instant(day, at, tz)
                if start <= due < end:
                    out.append((due, due + timedelta(minutes=window)))
            day += DAY
        return sorted(out)


@dataclass(frozen=True, order=True)
class Happening:
    at: datetime
    dispenser_id: str
    kind: str  # present take not_taken jam help power_lost power_restored temp_on temp_off
    #            net_down net_up stay_start refill
    due: datetime | None = None
    window_end: datetime | None = None
    until: datetime | None = None  # stays: the end
    entered: bool = False  # stays: staff enter it as an absence


@dataclass
class Outgoing:
    topic: str
    payload: bytes
    retain: bool = False
    type: str = ""  # the event type, or "status"/"online"
    due: datetime | None = None
    occurred_at: datetime | None = None


@dataclass
class SimDevice:
    spec: DispenserSpec
    seed: int
    started: datetime
    doses_left: int = 0
    seq: int = 0
    battery_pct: float = 100.0
    on_mains: bool = True
    temperature_c: float = 21.0
    config: DeviceConfig | None = None
    applied_version: int | None = None
    stays: list[tuple[datetime, datetime, bool]] = field(
        default_factory=list
    )  # (from, to, entered)
    _power_lost_at: datetime | None = None
    _ids: object = None

    @property
    def id(self) -> str:
        return self.spec.id

    def device_time(self, t: datetime) -> datetime:
        """The device clock: an offset and a drift, as cheap real-time clocks have."""
        p = self.spec.profile
        days = (t - self.started).total_seconds() / 86400
        return t + timedelta(seconds=p.clock_offset_s + p.clock_drift_s_per_day * days)

    def away(self, t: datetime) -> tuple[datetime, datetime, bool] | None:
        """The hospital stay or trip the patient is on at ``t``, if any."""
        return next((s for s in self.stays if s[0] <= t < s[1]), None)

    # -- planning ----------------------------------------------------------------------------

    def plan_day(self, day: date) -> list[Happening]:
        """Everything this dispenser and its patient do on UTC ``day`` (its own stream)."""
        p, d = self.spec.profile, self.id
        start = datetime.combine(day, time(), tzinfo=UTC)
        end = start + DAY
        out: list[Happening] = []
        r = rng_for(self.seed, d, day, "day")
        at = start + timedelta(hours=r.uniform(8, 18))
        if r.random() < p.hospital_stays_per_month / 30 and at >= self.started:
            until = at + timedelta(days=r.randint(*p.hospital_days), hours=r.uniform(0, 6))
            entered = r.random() < p.absence_entered_rate
            self.stays.append((at, until, entered))
            out.append(Happening(at, d, "stay_start", until=until, entered=entered))
        for kind, rate, hours in (
            ("net", p.offline_per_day, p.offline_hours),
            ("power", p.power_cuts_per_day, p.power_cut_hours),
            ("temp", p.temperature_excursions_per_day, p.excursion_hours),
        ):
            if r.random() < rate:
                at = start + timedelta(hours=r.uniform(0, 24))
                until = at + timedelta(hours=r.uniform(*hours))
                on, off = {
                    "net": ("net_down", "net_up"),
                    "power": ("power_lost", "power_restored"),
                    "temp": ("temp_on", "temp_off"),
                }[kind]
                out += [Happening(at, d, on), Happening(until, d, off)]
        if r.random() < p.help_per_day:
            at = start + timedelta(hours=r.uniform(7, 22))
            if self.away(at) is None:
                out.append(Happening(at, d, "help"))
        if self.config is not None:
            for due, wend in self.config.slots(start, end):
                out += self.plan_dose(due, wend)
        return out

    def plan_dose(self, due: datetime, wend: datetime) -> list[Happening]:
        p, d = self.spec.profile, self.id
        r = rng_for(self.seed, d, None, f"dose/{due.isoformat()}")
        withdrawn = Happening(wend, d, "not_taken", due, wend)
        if self.away(due) is not None:
            return [Happening(due, d, "present", due, wend), withdrawn]
        if r.random() < p.jam_rate:
            return [Happening(due, d, "jam", due, wend), withdrawn]
        assert self.config is not None
        local_hour = due.astimezone(ZoneInfo(self.config.timezone)).hour
        miss = p.miss_rate * (p.evening_miss_factor if local_hour >= 17 else 1.0)
        late_min = r.lognormvariate(math.log(p.lateness_median_min), p.lateness_sigma)
        if r.random() < miss or due + timedelta(minutes=late_min) >= wend:
            return [Happening(due, d, "present", due, wend), withdrawn]
        taken = due + timedelta(minutes=late_min)
        return [Happening(due, d, "present", due, wend), Happening(taken, d, "take", due, wend)]

    # -- acting ------------------------------------------------------------------------------

    def _event_id(self) -> str:
        # From the dispenser's own stream, so a repeated run sends the same ids.
        if self._ids is None:
            self._ids = rng_for(self.seed, self.id, None, "event-ids")
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))  # type: ignore[attr-defined]

    def _event(
        self, t: datetime, type_: str, due: datetime | None = None, **extra: object
    ) -> Outgoing:
        self.seq += 1
        detail = extra.pop("detail", None)
        doses_left = extra.pop("doses_left", None)
        occurred = self.device_time(t)
        payload = event(
            self.id,
            self.seq,
            type_,
            occurred,
            dose_due_at=due,
            doses_left=doses_left,  # type: ignore[arg-type]
            detail=detail,  # type: ignore[arg-type]
            event_id=self._event_id(),
        )
        return Outgoing(f"{TOPIC_ROOT}/{self.id}/events", payload, False, type_, due, occurred)

    def status(self, t: datetime) -> Outgoing:
        payload = status(
            self.id,
            self.device_time(t),
            battery_pct=max(0, min(100, round(self.battery_pct))),
            on_mains=self.on_mains,
            doses_left=self.doses_left,
            temperature_c=round(self.temperature_c, 1),
            schedule_version=self.applied_version,
        )
        return Outgoing(f"{TOPIC_ROOT}/{self.id}/status", payload, True, "status")

    def drain(self, t: datetime, since: datetime) -> None:
        if not self.on_mains:
            hours = (t - since).total_seconds() / 3600
            self.battery_pct = max(
                0.0, self.battery_pct - hours * self.spec.profile.battery_drain_pct_per_h
            )
        elif self.battery_pct < 100:
            self.battery_pct = min(
                100.0, self.battery_pct + 20 * (t - since).total_seconds() / 3600
            )

    def act(self, h: Happening) -> list[Outgoing]:
        """The messages the firmware publishes for ``h`` (a status too when its state changed)."""
        t, k = h.at, h.kind
        if k == "present":
            return [self._event(t, "dose_presented", h.due)]
        if k == "take":
            self.doses_left = max(0, self.doses_left - 1)
            return [self._event(t, "dose_taken", h.due, doses_left=self.doses_left)]
        if k == "not_taken":
            return [self._event(t, "dose_not_taken", h.due)]
        if k == "jam":
            return [self._event(t, "jam", None, detail={"code": "J12"})]
        if k == "help":
            return [self._event(t, "help_pressed")]
        if k == "power_lost":
            self.on_mains = False
            return [self._event(t, "power_lost"), self.status(t)]
        if k == "power_restored":
            self.on_mains = True
            return [self._event(t, "power_restored"), self.status(t)]
        if k in ("temp_on", "temp_off"):
            self.temperature_c = self.spec.profile.excursion_c if k == "temp_on" else 21.0
            return [self.status(t)]
        return []

    def apply_config(self, t: datetime, config: DeviceConfig) -> list[Outgoing]:
        """A (new) retained config: follow it from now and say so."""
        if config.version == self.applied_version:
            return []
        self.config, self.applied_version = config, config.version
        return [self._event(t, "config_applied", detail={"version": config.version})]
