"""The demo's Umeå fleet: 30 days of history made by the service's own code, then live.

One thread, beside the live service the demo runs (gateway, web app, the three dispensers of
:mod:`service.demo` whose first dose falls due within two minutes):

1. **History** (:class:`service.sim_history.History`): the fleet's last ``days`` days under a
   simulated clock, through the gateway's writer, the alarm jobs' sweeps and the public API.
   Then it *catches up*: it is run again to the wall clock's minute until it is within a
   minute of it. The simulated clock never passes the wall clock, so each of its sweeps is one
   the live service could have made at that moment (a little late, never early).
2. **Hand-over**: the same devices go on, on the wall clock; what fell due in the last minute
   happens at once, and every reconnect is stored before step 3. Through a configured broker
   each device is an MQTT client of it (:class:`service.sim_live.MqttTransport`). The embedded
   broker (amqtt) is not one for a fleet: a hundred clients connecting make it fail sessions
   ("dictionary changed size during iteration" while it walks its subscriptions), so then the
   fleet's messages go on through the gateway's writer in process, as in the history, stamped
   with the wall clock; the demo's three dispensers stay MQTT clients of it.
3. Only then do the **live alarm jobs** start (``start_jobs``): until then nothing swept the
   past with the wall clock's ``now`` while its events were still being written. The demo's
   own three dispensers are swept by the history's sweeps during the catch-up (those run on a
   clock at most a minute behind), and by the live ones after.

Escalation and notification dispatch run only from step 3, and the history's night nurse has
resolved every alarm of the fleet's past by then: nobody is paged for what was simulated.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from dispenser_sim.profiles import Fleet
from dispenser_sim.staff import Api, ApiError, ApiStaff
from dosewatch.config import MqttUrl
from gateway import downlink
from service.sim_history import History, HistoryRefused, RetainedConfigs, WriterTransport
from service.sim_live import BrokerUnavailable, MqttTransport

log = logging.getLogger(__name__)
MINUTE = timedelta(minutes=1)
# What the history's thousands of simulated alarms would print, one line each.
_QUIET_DURING_HISTORY = (
    "alarms",
    "dashboards",
    "dispenser_sim.engine",
    "dosewatch.usecases",
    "gateway.downlink",
)


class Stopped(Exception):
    """Ctrl-C while the fleet runs: unwinds the run wherever it is."""


class _WallTicker:
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def wait_until(self, t: datetime) -> None:
        if self.stop.wait(max(0.0, (t - datetime.now(UTC)).total_seconds())):
            raise Stopped


@contextmanager
def _quiet(names: tuple[str, ...]) -> Iterator[None]:
    """INFO and WARNING lines of ``names`` are not shown while the history runs (ERROR still
    is): every simulated alarm would say that its first step reached no one."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def make_history(
    pool: ConnectionPool,
    fleet: Fleet,
    days: int,
    now: datetime,
    *,
    wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_tick: Callable[[datetime], None] | None = None,
) -> History:
    """The fleet's ``days`` days up to ``now``, then on up to the minute of ``wall()`` (the
    minutes the history itself took), then finished; the engine is ready to go live."""
    with History(pool, fleet, days, now=now, allow_foreign=True, on_tick=on_tick) as h:
        h.run_until(now)
        ran_to = now
        while (until := wall().replace(second=0, microsecond=0)) > ran_to:
            h.run_until(until)
            ran_to = until
        if ran_to > h.engine.now:
            h.engine.tick(ran_to)  # the sweeps at the minute caught up to, even if all is quiet
        h.finish()
    return h


class DemoFleet:
    def __init__(
        self,
        pool: ConnectionPool,
        fleet: Fleet,
        days: int,
        *,
        mqtt: MqttUrl | None,
        publisher: Any,
        api: Callable[[], Any],
        start_jobs: Callable[[], Any],
        say: Callable[[str], None],
    ) -> None:
        """``mqtt``: the broker the fleet goes live through (None: in process, through the
        gateway's writer); ``publisher``: a connected paho client (the gateway's) for the
        fleet's configs on that broker;
        ``api()``: an HTTP client on the live app (admin token); ``start_jobs()``: starts the
        live alarm jobs and returns their scheduler; ``say``: one progress line."""
        self.pool, self.fleet, self.days, self.mqtt = pool, fleet, days, mqtt
        self.publisher, self.api, self.start_jobs, self.say = publisher, api, start_jobs, say
        self.stop = threading.Event()
        self.live = threading.Event()  # set once the live alarm jobs run
        self.jobs: Any = None
        self.failed: BaseException | None = None
        self._transport: MqttTransport | WriterTransport | None = None
        self._http: Any = None
        self._thread = threading.Thread(target=self._run, name="demo-fleet", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float = 30.0) -> None:
        self.stop.set()
        self._thread.join(timeout_s)
        if self._transport is not None:
            self._transport.close()
        if self._http is not None:
            self._http.close()

    def _run(self) -> None:
        try:
            self._history_then_live()
        except Stopped:
            pass
        except (psycopg.Error, OSError, ApiError, BrokerUnavailable, HistoryRefused) as exc:
            if self.stop.is_set():
                return  # Ctrl-C came while the fleet was between ticks: the pool is closing
            # The web app goes on without the fleet; a defect (anything else) shows its traceback.
            self.failed = exc
            log.error("the demo fleet stopped: %s", exc)

    def _history_then_live(self) -> None:
        began = time.monotonic()
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        fleet, days = self.fleet, self.days
        self.say(
            f"History: {len(fleet.dispensers)} dispensers of the {fleet.name} fleet, {days} days,"
            " through the gateway's writer and the alarm sweeps under a simulated clock…"
        )
        last_day = [now.date()]

        def on_tick(t: datetime) -> None:
            if self.stop.is_set():
                raise Stopped
            if t.date() != last_day[0] and (t.day % 5 == 0 or t.date() == now.date()):
                done = days - (now.date() - t.date()).days
                self.say(f"  history: {t:%Y-%m-%d} ({done} of {days} days), "
                         f"{time.monotonic() - began:.0f} s")  # fmt: skip
            last_day[0] = t.date()

        with _quiet(_QUIET_DURING_HISTORY):
            h = make_history(self.pool, fleet, days, now, on_tick=on_tick)
        engine = h.engine
        self.say(
            f"History done in {time.monotonic() - began:.0f} s: {engine.sent:,} messages, "
            f"{h.staff.refills} refills, {h.staff.absences} hospital stays entered."
        )
        self._go_live(engine, list(h.truth.dispensers))

    def _go_live(self, engine: Any, ids: list[str]) -> None:
        at = datetime.now(UTC)
        if self.mqtt is None:
            self._transport = WriterTransport(self.pool, RetainedConfigs(), writers=2)
        else:
            with self.pool.connection() as conn:
                for d in ids:  # the history's down-link went to its stand-in broker
                    downlink.on_schedule_changed(conn, self.publisher, d, at)
            self._transport = MqttTransport(self.mqtt, None, config_wait_s=5.0)
        self._http = http = self.api()
        api = Api(http)
        engine.handover(
            self._transport, _WallTicker(self.stop), at, staff=ApiStaff(api, nurse_after=None)
        )
        self._wait_stored(api, {d for d in ids if engine.states[d].down == 0}, at)
        self.jobs = self.start_jobs()
        self.live.set()
        how = "as MQTT clients of the broker" if self.mqtt else "through the gateway's writer"
        self.say(
            f"Live: the {self.fleet.name} fleet's {len(ids)} dispensers go on {how}, on the wall"
            " clock; the alarm jobs run now."
        )
        while True:  # Stopped ends it (the ticker waits on the stop event)
            engine.run_until(datetime.now(UTC) + timedelta(hours=6))

    def _wait_stored(self, api: Api, online: set[str], since: datetime) -> None:
        """Until the gateway has stored each online device's reconnect (its last-seen time)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = {
                d["id"]
                for d in api.get("/api/v1/console/dispensers")
                if d["last_seen_at"] and datetime.fromisoformat(d["last_seen_at"]) >= since
            }
            if online <= seen:
                return
            if self.stop.wait(0.2):
                raise Stopped
        log.warning("%d dispensers' reconnects not stored after 60 s", len(online - seen))
