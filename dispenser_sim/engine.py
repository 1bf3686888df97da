"""The fleet engine: moves simulated time, lets each device act, delivers or buffers, records.

Time advances in whole-minute ticks (only the minutes where something happens: a device acts,
a heartbeat is due, a taken dose's window closes, or the ``wake`` interval has passed). At each tick
the engine sets the clock, lets every device act on its happenings, sends what an online device
sends and buffers what an offline one cannot, publishes heartbeats on the grid, hands out new
configs, then asks the transport to *settle* (everything sent is stored by the service) and
runs the service hooks (the sweeps, in history runs) and staff rounds. A received message is
thus stamped with its tick: the truth records exactly that as its receive time.

Transports: :mod:`service.sim_history` (the gateway's writer, in process) and
:mod:`service.sim_live` (paho clients through a real broker).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Protocol

from dispenser_sim.device import DAY, DeviceConfig, Happening, Outgoing, SimDevice
from dispenser_sim.profiles import Fleet, rng_for
from dispenser_sim.truth import DoseTruth, Truth

log = logging.getLogger(__name__)
MINUTE = timedelta(minutes=1)
DOSE_KINDS = frozenset({"present", "take", "not_taken", "jam", "window_closes"})


class Transport(Protocol):
    def connect(self, device_id: str, now: datetime) -> None: ...
    def cut(self, device_id: str, now: datetime) -> None: ...
    def send(self, device_id: str, out: Outgoing, now: datetime) -> None: ...
    def settle(self, now: datetime) -> None: ...
    def configs(self) -> dict[str, bytes]: ...


class Staff(Protocol):
    def absence(self, dispenser_id: str, starts: datetime, ends: datetime) -> None: ...
    def refill(self, dispenser_id: str, doses_loaded: int) -> None: ...


class Ticker(Protocol):
    def wait_until(self, t: datetime) -> None: ...


@dataclass
class _State:
    device: SimDevice
    down: int = 0  # nested outages (a network cut inside an outage)
    buffer: list[Outgoing] = field(default_factory=list)
    refill_phase: int = 0


class Engine:
    def __init__(
        self,
        fleet: Fleet,
        transport: Transport,
        ticker: Ticker,
        truth: Truth,
        *,
        staff: Staff | None = None,
        heartbeat: timedelta | None = None,
        hooks: list[Callable[[datetime], None]] | None = None,
        resolution: timedelta = MINUTE,
        wake: timedelta | None = None,
        wake_at: Callable[[], datetime | None] | None = None,
    ) -> None:
        """``resolution``: the tick; a minute for simulated time, seconds for a live run with
        one-minute windows (a take is sent at the next tick). ``wake``: tick at least this
        often even when no device acts; ``wake_at()``: also tick then (a hook's next run), so
        the service hooks keep their cadence."""
        self.fleet, self.transport, self.ticker, self.truth = fleet, transport, ticker, truth
        self.staff, self.hooks, self.resolution = staff, hooks or [], resolution
        self.wake, self.wake_at = wake, wake_at
        self.heartbeat = heartbeat or timedelta(minutes=fleet.heartbeat_min)
        self.now = truth.start
        self.states: dict[str, _State] = {}
        self._queue: list[Happening] = []
        self._planned_until = truth.start.replace(hour=0, minute=0, second=0, microsecond=0)
        self._next_beat = truth.start
        self.sent = 0
        for spec in fleet.dispensers:
            capacity = len(spec.doses) * fleet.supply_days
            dev = SimDevice(spec, fleet.seed, truth.start, doses_left=capacity)
            phase = rng_for(fleet.seed, spec.id, None, "refill").randrange(fleet.refill_days)
            self.states[spec.id] = _State(dev, refill_phase=phase)
            truth.dispensers.append(spec.id)

    # -- control (fault drills) --------------------------------------------------------------

    def cut_network(self, dispenser_id: str, hours: float) -> None:
        """Take one dispenser off the network from now for ``hours`` (a drill)."""
        self._push(Happening(self.now, dispenser_id, "net_down"))
        self._push(Happening(self.now + timedelta(hours=hours), dispenser_id, "net_up"))

    # -- the loop ----------------------------------------------------------------------------

    def start(self) -> None:
        self.ticker.wait_until(self.now)
        for st in self.states.values():
            self.transport.connect(st.device.id, self.now)
        self.transport.settle(self.now)
        self._take_configs(self.now)
        self.transport.settle(self.now)

    def handover(
        self,
        transport: Transport,
        ticker: Ticker,
        now: datetime,
        *,
        heartbeat: timedelta | None = None,
        staff: Staff | None = None,
        hooks: list[Callable[[datetime], None]] | None = None,
    ) -> None:
        """Go on from where the engine stopped over another transport and clock (a history run
        going live, in the demo): every device keeps its state, supply and buffer; each one
        that is online connects again (its ``online``, its retained config, a status), as after
        a gateway or network change. What was due between the last tick and ``now`` happens at
        once, so nothing of the past is left for the live service's sweeps to find undone."""
        if now < self.now:
            raise ValueError(f"cannot hand over at {now}: the engine is at {self.now} already")
        self.transport, self.ticker = transport, ticker
        self.heartbeat = heartbeat or timedelta(minutes=self.fleet.heartbeat_min)
        self.staff, self.hooks, self.wake, self.wake_at = staff, hooks or [], None, None
        for st in self.states.values():
            if st.down == 0:
                transport.connect(st.device.id, now)
        transport.settle(now)
        self._next_beat = now  # a status from each online device in the tick below
        self.tick(now)

    def run_until(self, end: datetime) -> None:
        while True:
            self._plan_through(max(end, self.now) + DAY)
            t = min(self._next_beat, self._queue[0].at if self._queue else end)
            if self.wake is not None:
                t = min(t, self.now + self.wake)
            if self.wake_at is not None and (due := self.wake_at()) is not None:
                t = min(t, due)
            t = _ceil(max(t, self.now + self.resolution), self.resolution)
            if t > end:
                break
            self.tick(t)
        self.truth.end = end

    def tick(self, t: datetime) -> None:
        self.ticker.wait_until(t)
        if t.date() != self.now.date():
            log.info("simulated %s: %d messages so far", t.date(), self.sent)
        self.now = t
        while self._queue and self._queue[0].at <= t:
            self._happen(heapq.heappop(self._queue), t)
        if t >= self._next_beat:
            for st in self.states.values():
                st.device.drain(t, t - self.heartbeat)
                if st.down == 0:
                    self._emit(st, st.device.status(t), t)
            while self._next_beat <= t:
                self._next_beat += self.heartbeat
        self._take_configs(t)
        self.transport.settle(t)
        for hook in self.hooks:
            hook(t)

    # -- internals ---------------------------------------------------------------------------

    def _push(self, h: Happening) -> None:
        heapq.heappush(self._queue, h)

    def _plan_through(self, until: datetime) -> None:
        while self._planned_until < until:
            day = self._planned_until.date()
            for st in self.states.values():
                for h in st.device.plan_day(day):
                    if h.at >= self.truth.start:
                        self._push_dose(st, h)
                self._plan_refill(st, day)
            self._planned_until += DAY

    def _push_dose(self, st: _State, h: Happening) -> None:
        self._push(h)
        self._note_plan(st, h)
        if h.kind == "take" and h.window_end is not None:
            # Nothing happens at a taken dose's window end, but the service sweeps then: if the
            # take is still in an offline device's buffer, the slot closes unknown at that
            # minute, as a live sweep would close it (not at the next wake-up).
            closes = Happening(h.window_end, h.dispenser_id, "window_closes", h.due, h.window_end)
            self._push(closes)

    def _plan_refill(self, st: _State, day: object) -> None:
        assert hasattr(day, "toordinal")
        if (day.toordinal() + st.refill_phase) % self.fleet.refill_days:
            return
        r = rng_for(self.fleet.seed, st.device.id, day, "refill")  # type: ignore[arg-type]
        at = datetime.combine(day, time(9), tzinfo=self.truth.start.tzinfo)  # type: ignore[arg-type]
        at += timedelta(hours=r.uniform(0, 4))
        if at >= self.truth.start:
            self._push(Happening(at, st.device.id, "refill"))

    def _note_plan(self, st: _State, h: Happening) -> None:
        if h.kind not in ("present", "jam") or h.due is None or h.window_end is None:
            return
        d = st.device
        stay = d.away(h.due)
        self.truth.doses[Truth.key(d.id, h.due)] = DoseTruth(
            d.id,
            h.due,
            h.window_end,
            "missed" if stay is None else "away",
            absence_entered=stay is not None and stay[2],
        )

    def _happen(self, h: Happening, t: datetime) -> None:
        st = self.states[h.dispenser_id]
        d = st.device
        if h.kind == "net_down":
            st.down += 1
            if st.down == 1:
                self.transport.cut(d.id, t)
                self.truth.offline.setdefault(d.id, []).append([t, None])
            return
        if h.kind == "net_up":
            st.down = max(0, st.down - 1)
            if st.down == 0:
                self._reconnect(st, t)
            return
        if h.kind == "window_closes":
            return
        if h.kind == "stay_start":
            if h.entered and self.staff is not None and h.until is not None:
                self.staff.absence(d.id, h.at, h.until)
            return
        if h.kind == "refill":
            capacity = len(d.spec.doses) * self.fleet.supply_days
            loaded = capacity - d.doses_left
            stay = d.away(t)
            if stay is not None:  # nobody home: the pharmacist comes the day after the return
                self._push(Happening(stay[1] + timedelta(hours=20), d.id, "refill"))
                return
            if loaded > 0:
                d.doses_left = capacity
                if self.staff is not None:
                    self.staff.refill(d.id, loaded)
                self._emit(st, d.status(t), t)
            return
        if h.kind == "take" and h.due is not None:
            dose = self.truth.dose(d.id, h.due)
            if dose is not None:
                dose.outcome, dose.taken_at = "taken", h.at
        for out in d.act(h):
            self._emit(st, out, t)

    def _emit(self, st: _State, out: Outgoing, t: datetime) -> None:
        if st.down:
            if out.type != "status":  # the retained status is only ever the latest: not buffered
                st.buffer.append(out)
            return
        self._deliver(st, out, t)

    def _deliver(self, st: _State, out: Outgoing, t: datetime) -> None:
        self.transport.send(st.device.id, out, t)
        self.sent += 1
        d = st.device.id
        if out.type in ("dose_taken", "dose_not_taken") and out.due is not None:
            dose = self.truth.dose(d, out.due)
            if dose is not None:
                dose.deliveries.append((out.type, t))
        elif out.type in ("jam", "help_pressed") and out.occurred_at is not None:
            self.truth.occurrences.append((d, out.type, out.occurred_at, t))
        elif out.type == "status":
            dev = st.device
            sample = (t, round(dev.battery_pct), dev.on_mains, round(dev.temperature_c, 1))
            self.truth.samples.setdefault(d, []).append(sample)

    def _reconnect(self, st: _State, t: datetime) -> None:
        d = st.device
        self.transport.connect(d.id, t)
        spans = self.truth.offline.get(d.id)
        if spans and spans[-1][1] is None:
            spans[-1][1] = t
        order = d.spec.profile.replay_order
        r = rng_for(self.fleet.seed, d.id, t.date(), f"replay/{t.isoformat()}")
        if order == "any":
            order = r.choice(("reverse", "shuffle"))
        replay = list(st.buffer)
        if order == "reverse":
            replay.reverse()
        elif order == "shuffle":
            r.shuffle(replay)
        twice = r.random() < d.spec.profile.replay_twice_rate
        st.buffer = []
        for out in replay * (2 if twice else 1):
            self._deliver(st, out, t)
        self._deliver(st, d.status(t), t)
        if replay:
            self.truth.replays.append((d.id, t, len(replay), order, twice))

    def _take_configs(self, t: datetime) -> None:
        for dispenser_id, payload in self.transport.configs().items():
            st = self.states.get(dispenser_id)
            config = DeviceConfig.parse(payload)
            if st is None or config is None:
                continue
            outs = st.device.apply_config(t, config)
            if outs:
                self._replan_doses(st, t)
            for out in outs:
                self._emit(st, out, t)

    def _replan_doses(self, st: _State, t: datetime) -> None:
        """A new schedule: drop the doses planned from the old one, plan the new one's."""
        d = st.device
        kept = [h for h in self._queue if h.dispenser_id != d.id or h.kind not in DOSE_KINDS]
        self._queue = kept
        heapq.heapify(self._queue)
        for key in [
            k for k, v in self.truth.doses.items() if v.dispenser_id == d.id and v.due >= t
        ]:
            del self.truth.doses[key]
        assert d.config is not None
        for due, wend in d.config.slots(t, self._planned_until):
            for h in d.plan_dose(due, wend):
                self._push_dose(st, h)


def _ceil(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=t.tzinfo)
    n = -((epoch - t) // step)  # ceiling division of timedeltas
    return epoch + n * step
