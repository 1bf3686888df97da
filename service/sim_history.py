"""``dosewatch sim history``: N past days of a fleet's life, made by the service's own code.

No rows are written here. Under a simulated clock (:class:`~dosewatch.clock.FakeClock`):

* each tick's messages go through the gateway's own batch path
  (:func:`gateway.writer.write_batch`, as the MQTT adapter calls it, with the tick as the
  receive time), Last Will ``0`` and retained ``1`` included;
* configs reach the devices through the gateway's own down-link
  (:func:`gateway.downlink.publish_pending`), published into :class:`RetainedConfigs`, which
  stands in for the broker's retained store (there is no broker in a history run);
* the alarm jobs' own functions run on their cadence (missed-dose sweep, presence, device
  alarms, slot planning, the adherence rollup), as ``dosewatch alarms`` schedules them (the
  device sweep and the rollup less often than live);
* people act through the public API (:mod:`dispenser_sim.staff`), in process over
  ``create_app`` with the same clock.

Escalation and notification dispatch are not run: a history run must never page anyone.
"""

from __future__ import annotations

import logging
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from psycopg_pool import ConnectionPool

from alarms.device import sweep_device_alarms
from alarms.jobs import mark_offline, plan_slots
from alarms.missed import sweep_missed_doses
from dispenser_sim.device import Outgoing
from dispenser_sim.engine import Engine
from dispenser_sim.profiles import Fleet
from dispenser_sim.staff import Api, ApiStaff, foreign_patients, set_up_fleet
from dispenser_sim.truth import Truth
from dosewatch.clock import FakeClock
from dosewatch.db import rollups
from dosewatch.domain.device_alarms import Settings as DeviceSettings
from dosewatch.domain.protocol import TOPIC_ROOT
from gateway import downlink
from gateway.writer import Inbound, write_batch

log = logging.getLogger(__name__)
HORIZON = timedelta(hours=48)
_SHARD_FROM = 200  # messages in a tick from which the writers share them
_GROWING = ("dose_events", "dose_slots", "dispenser_status", "alarms", "alarm_history")


class HistoryRefused(RuntimeError):
    pass


@dataclass
class _Published:
    """What ``publish_config`` needs back from ``client.publish`` (paho's MessageInfo)."""

    rc: int = 0

    def wait_for_publish(self, timeout: float | None = None) -> None:
        return None

    def is_published(self) -> bool:
        return True


@dataclass
class RetainedConfigs:
    """The broker's retained config topics, for a run without a broker: the down-link
    publishes here; a device gets its config on (re)connect, or at once while connected."""

    retained: dict[str, bytes] = field(default_factory=dict)
    connected: set[str] = field(default_factory=set)
    fresh: dict[str, bytes] = field(default_factory=dict)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> _Published:
        device = topic.split("/")[-2]
        if retain:
            self.retained[device] = payload
        if device in self.connected:
            self.fresh[device] = payload
        return _Published()


class WriterTransport:
    """Messages → the gateway's writer, one batch per tick, stamped with the tick.

    ``writers`` batches are written at once, each dispenser's messages in one of them and in
    order, as that many gateways in a shared subscription group would: storage is idempotent
    and matching order-free, and each batch locks only its own dispensers' rows.
    """

    def __init__(self, pool: ConnectionPool, configs: RetainedConfigs, writers: int = 4) -> None:
        self.pool, self.configs_store, self.writers = pool, configs, writers
        self.pending: list[Inbound] = []
        self.stored = 0
        self._executor = ThreadPoolExecutor(writers, thread_name_prefix="sim-writer")

    def connect(self, device_id: str, now: datetime) -> None:
        self.configs_store.connected.add(device_id)
        if device_id in self.configs_store.retained:
            self.configs_store.fresh[device_id] = self.configs_store.retained[device_id]
        self.pending.append(Inbound(f"{TOPIC_ROOT}/{device_id}/online", b"1", now))

    def cut(self, device_id: str, now: datetime) -> None:
        self.configs_store.connected.discard(device_id)
        # What the broker does when a client vanishes: publish its Last Will.
        self.pending.append(Inbound(f"{TOPIC_ROOT}/{device_id}/online", b"0", now))

    def send(self, device_id: str, out: Outgoing, now: datetime) -> None:
        self.pending.append(Inbound(out.topic, out.payload, now))

    def settle(self, now: datetime) -> None:
        if not self.pending:
            return
        # Most ticks carry a message or two: one transaction then, not one per writer (each
        # commit waits for the disk); the heartbeat bursts are shared out.
        writers = self.writers if len(self.pending) >= _SHARD_FROM else 1
        shards: dict[int, list[Inbound]] = {}
        for m in self.pending:
            shard = zlib.crc32(m.topic.split("/")[3].encode()) % writers
            shards.setdefault(shard, []).append(m)
        for outcomes in self._executor.map(self._write, shards.values()):
            if outcomes.get("quarantined"):
                raise RuntimeError(f"the gateway quarantined simulated messages: {dict(outcomes)}")
        self.stored += len(self.pending)
        self.pending = []

    def _write(self, batch: list[Inbound]) -> Counter[str]:
        with self.pool.connection() as conn:
            # The gateway's own write, without waiting for each commit to reach the disk: a
            # history cut short by a crash is made again, not resumed. Reset before the
            # connection goes back to the pool (the demo's live gateway shares it).
            conn.execute("SET synchronous_commit = off")
            conn.commit()  # a session setting; write_batch's transaction stays a top-level one
            try:
                return write_batch(conn, batch)
            finally:
                conn.execute("RESET synchronous_commit")
                conn.commit()

    def close(self) -> None:
        self._executor.shutdown()

    def configs(self) -> dict[str, bytes]:
        fresh, self.configs_store.fresh = self.configs_store.fresh, {}
        return fresh


class FakeTicker:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def wait_until(self, t: datetime) -> None:
        self.clock.set(t)


class ServiceJobs:
    """The alarm jobs and the down-link on their cadence, on the simulated clock."""

    def __init__(
        self,
        pool: ConnectionPool,
        clock: FakeClock,
        configs: RetainedConfigs | None,
        *,
        offline_after: timedelta = timedelta(minutes=15),
        device_sweep: timedelta = timedelta(minutes=30),
    ) -> None:
        """``configs=None``: a real gateway runs the down-link (a run through a broker)."""
        self.pool, self.clock, self.configs = pool, clock, configs
        self.offline_after, self.device_sweep = offline_after, device_sweep
        self.device_cfg = DeviceSettings(offline_after=offline_after)
        self._next: dict[str, datetime] = {}

    def next_run(self, name: str) -> datetime | None:
        return self._next.get(name)

    def _due(self, name: str, every: timedelta, now: datetime) -> bool:
        if now < self._next.get(name, now):
            return False
        self._next[name] = now + every
        return True

    def __call__(self, now: datetime) -> None:
        if self.configs is not None and self._due("downlink", timedelta(minutes=1), now):
            with self.pool.connection() as conn:
                downlink.publish_pending(conn, self.configs, now)  # type: ignore[arg-type]
        if self._due("plan", timedelta(hours=12), now):  # live: 10 min; slots 36-48 h ahead
            plan_slots(self.pool, self.clock, HORIZON)
        if self._due("analyze", timedelta(days=1), now):
            # What autovacuum does for a live database, done on simulated time: without fresh
            # statistics the device sweep's snapshot query is estimated so costly that
            # PostgreSQL JIT-compiles it (3 s a run instead of 0.1 s). Only the tables that
            # grow; a whole-database ANALYZE every few hours was a third of a run's time.
            with self.pool.connection() as conn:
                conn.execute(f"ANALYZE {', '.join(_GROWING)}")
        if self._due("presence", timedelta(minutes=1), now):
            mark_offline(self.pool, self.clock, self.offline_after)
        sweep_missed_doses(self.pool, self.clock, offline_after=self.offline_after)
        if self._due("device", self.device_sweep, now):
            sweep_device_alarms(self.pool, self.clock, self.device_cfg)
        if self._due("rollup", timedelta(hours=6), now):
            rollups.run_job(self.pool, now)  # the adherence figures, as the service keeps them


def history_start(days: int, now: datetime, tz: str) -> datetime:
    """Local midnight ``days`` days before ``now``'s local date."""
    local = now.astimezone(ZoneInfo(tz))
    first = (local - timedelta(days=days)).date()
    return datetime.combine(first, datetime.min.time(), tzinfo=ZoneInfo(tz)).astimezone(UTC)


class History:
    """A history run in steps, for ``sim history`` and the demo: set up the fleet (entering),
    :meth:`run_until` a time (again and again, e.g. to catch up with the wall clock), then
    :meth:`finish` (leaving). The simulated clock never passes the ``now`` it is run to, so a
    sweep here is one a live service could have made at that moment.

    ``engine`` is left as it was at the end: its devices (state, supply, buffers) can go on
    live over another transport (:meth:`dispenser_sim.engine.Engine.handover`).
    """

    def __init__(
        self,
        pool: ConnectionPool,
        fleet: Fleet,
        days: int,
        *,
        now: datetime,
        allow_foreign: bool = False,
        nurse: bool = True,
        on_tick: Callable[[datetime], None] | None = None,
    ) -> None:
        self.pool, self.fleet, self.days, self.nurse = pool, fleet, days, nurse
        self.allow_foreign, self.on_tick = allow_foreign, on_tick
        self.start = history_start(days, now, fleet.timezone)
        self.clock = FakeClock(self.start)
        self._stack = ExitStack()

    def __enter__(self) -> History:
        try:
            self._set_up()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    def _set_up(self) -> None:
        from fastapi.testclient import TestClient

        from dashboards.app import create_app
        from dosewatch.db import users as user_sql

        start, fleet, pool, clock = self.start, self.fleet, self.pool, self.clock
        run_id = uuid.uuid4().hex[:8]
        with pool.connection() as conn, conn.transaction():
            _, secret = user_sql.create_token(
                conn, name=f"dispenser_sim run {run_id}", role="admin", team_id=None, now=start
            )
        app = create_app(pool, clock, horizon=HORIZON, default_timezone=fleet.timezone)
        http = self._stack.enter_context(
            TestClient(app, headers={"Authorization": f"Bearer {secret}"})
        )
        api = Api(http)
        foreign = foreign_patients(api)
        if foreign and not self.allow_foreign:
            raise HistoryRefused(
                f"the database holds {len(foreign)} patient(s) the simulator did not make;"
                " use --allow-real-patients to add simulated history beside them"
            )
        known = {p["id"] for p in api.get("/api/v1/console/dispensers")}
        taken = [d.id for d in fleet.dispensers if d.id in known]
        if taken:
            raise HistoryRefused(f"dispensers {taken[:3]}… exist already (an earlier run?)")
        set_up_fleet(api, fleet, start, run_id)
        configs = RetainedConfigs()
        truth = Truth(run_id, fleet.name, fleet.seed, start)
        truth.offline_after_min = fleet.history_offline_after_min
        truth.device_sweep_min = 30
        ids = frozenset(d.id for d in fleet.dispensers)
        self.staff = ApiStaff(
            api, nurse_after=timedelta(minutes=20) if self.nurse else None, dispensers=ids
        )
        jobs = ServiceJobs(
            pool,
            clock,
            configs,
            offline_after=timedelta(minutes=truth.offline_after_min),
            device_sweep=timedelta(minutes=truth.device_sweep_min),
        )
        next_round = [start]

        def rounds(t: datetime) -> None:
            if t >= next_round[0]:
                self.staff.nurse_round(t)
                next_round[0] = t + timedelta(minutes=15)

        transport = WriterTransport(pool, configs)
        self._stack.callback(transport.close)
        hooks: list[Callable[[datetime], None]] = [jobs, rounds]
        if self.on_tick is not None:
            hooks.append(self.on_tick)
        self.truth, self.transport, self.jobs = truth, transport, jobs
        self.engine = Engine(
            fleet,
            transport,
            FakeTicker(clock),
            truth,
            staff=self.staff,
            heartbeat=timedelta(minutes=fleet.history_heartbeat_min),
            hooks=hooks,
            wake_at=lambda: jobs.next_run("device"),  # the device sweep's cadence, to the tick
        )
        # The configs the devices start from. Handed over even if another down-link (a live
        # gateway beside this run, in the demo) has published them already.
        with pool.connection() as conn:
            for d in fleet.dispensers:
                downlink.on_schedule_changed(conn, configs, d.id, start)  # type: ignore[arg-type]
        jobs(start)  # plan the slots before the devices connect
        self.engine.start()

    def run_until(self, t: datetime) -> None:
        self.engine.run_until(t)

    def finish(self) -> Truth:
        """Nothing from the past may page anyone later: the night nurse handles all of this
        fleet's alarms; the adherence figures are brought up to date."""
        now = self.engine.now
        if self.nurse:
            self.staff.nurse_after = timedelta(0)
            self.staff.nurse_round(now, thorough=True)
        rollups.run_job(self.pool, now)
        return self.truth


def run_history(
    pool: ConnectionPool,
    fleet: Fleet,
    days: int,
    *,
    now: datetime,
    truth_path: Path | None = None,
    allow_foreign: bool = False,
    nurse: bool = True,
) -> Truth:
    """Run ``fleet`` from ``days`` days before ``now`` up to ``now``; return the truth."""
    with History(pool, fleet, days, now=now, allow_foreign=allow_foreign, nurse=nurse) as run:
        run.run_until(now)
        truth = run.finish()
    if truth_path is not None:
        truth.save(truth_path)
    log.info("history: %d days, %d messages, %d refills", days, run.engine.sent, run.staff.refills)
    return truth
