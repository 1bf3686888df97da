"""bench/ingest: the gateway's loss-free ingest rate and latency, next to a bare baseline.

    .venv/bin/python -m bench.ingest [--events 50000] [--dispensers 500] [--rate 5000]
                                     [--latency-events 25000] [--runs 3] [--append BENCHMARKS.md]

Everything goes through a real Mosquitto started here with the project's configuration
(deploy/mosquitto: authentication, the topic ACL, unlimited queues), every dispenser publishing
as itself (dispenser_sim.burst, in a child process so it does not share this one's GIL), into a
private database on the machine's PostgreSQL (DOSEWATCH_BENCH_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres as the admin URL).

Two pipelines, measured in the same run, one after the other:

- **gateway**: ``gateway.mqtt.Gateway`` as shipped: MQTT 5 persistent session, full validation,
  idempotency ledger, slot matching, sequence/supply tracking, ack after commit.
- **baseline**: a bare paho subscriber (QoS 1, paho's automatic acks) that parses JSON and COPYs
  batches into a plain table: no validation, no idempotency, no matching.

Both run ``--runs`` times (default 3), alternating which goes first; the report gives every
round and the medians. For each: the sustained stored rate (all N events published as fast as
the broker takes them; N / (last commit - first publish), and the row count must equal N:
loss-free), then p50/p99 publish-to-commit latency at a paced rate (``--rate``, default 5,000
events/s).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from psycopg_pool import ConnectionPool

from bench.databases import private_database
from dispenser_sim.broker import ProjectBroker
from dispenser_sim.messages import event
from dosewatch.clock import SystemClock
from dosewatch.config import parse_mqtt_url
from dosewatch.db import registry
from dosewatch.db import schedules as schedule_sql
from dosewatch.db.migrate import migrate
from dosewatch.db.pool import make_pool
from gateway.mqtt import Gateway
from gateway.writer import Inbound

ADMIN_URL = os.environ.get(
    "DOSEWATCH_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TOPIC = "dosewatch/v1/dispensers/{}/events"
TYPES = ("dose_presented", "dose_taken", "lid_opened", "lid_closed", "dose_presented", "jam")


# --- workload -------------------------------------------------------------------------------------


def dispenser_ids(m: int) -> list[str]:
    return [f"DSP-B{i:05d}" for i in range(m)]


def build_messages(
    ids: list[str], per: int, run: str, start: datetime
) -> dict[str, list[tuple[str, bytes]]]:
    """``per`` events per dispenser: dose events that match its 08:00/20:00 slots, and others."""
    out = {}
    for d in ids:
        msgs = []
        for seq in range(1, per + 1):
            type_ = TYPES[seq % len(TYPES)]
            due = None
            if type_.startswith("dose_"):
                due = start.replace(hour=7, minute=0, second=0, microsecond=0) + timedelta(
                    hours=12 * (seq % 4)
                )
            occurred = start + timedelta(seconds=seq)
            body = event(
                d,
                seq,
                type_,
                occurred,
                dose_due_at=due,
                event_id=f"{run}-{d}-{seq}",
                doses_left=20 if type_ == "dose_taken" else None,
            )
            msgs.append((TOPIC.format(d), body))
        out[d] = msgs
    return out


def _publisher_child(
    port: int,
    ids: list[str],
    per: int,
    run: str,
    start: datetime,
    creds: dict[str, str],
    rate: float | None,
    out: Any,
) -> None:
    from dispenser_sim.burst import publish_burst

    messages = build_messages(ids, per, run, start)
    index = {d: i for i, d in enumerate(ids)}
    sent = [0.0] * (len(ids) * per)

    def on_sent(d: str, i: int, t: float) -> None:
        sent[index[d] * per + i] = t

    out.recv()  # go
    acked = publish_burst(
        "127.0.0.1",
        port,
        messages,
        creds,
        rate_per_s=rate,
        on_sent=on_sent,
        window=100 if rate is None else 20,
        timeout_s=600,
    )
    out.send((acked, sent))


@dataclass
class Result:
    name: str
    n: int
    seconds: float
    stored: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    paced_rate: float | None = None
    paced_n: int | None = None
    paced_stored: int | None = None

    @property
    def rate(self) -> float:
        return self.n / self.seconds


# --- the two pipelines ----------------------------------------------------------------------------


class Pipeline:
    """Something that consumes the broker into the database and reports commits per event id."""

    name = ""

    def start(self, on_commit: Callable[[list[str], float], None]) -> None: ...
    def stop(self) -> None: ...
    def count(self) -> int:
        raise NotImplementedError


class GatewayPipeline(Pipeline):
    name = "gateway (full: validation, idempotency, matching, tracking)"

    def __init__(self, url: str, pool: ConnectionPool) -> None:
        self.url, self.pool = url, pool
        self.gw: Gateway | None = None
        self.client_id = f"bench-gw-{uuid.uuid4().hex[:6]}"

    def start(self, on_commit: Callable[[list[str], float], None]) -> None:
        self.gw = Gateway(
            parse_mqtt_url(self.url),
            self.pool,
            SystemClock(),
            client_id=self.client_id,
            session_expiry_s=600,
        )

        def committed(batch: list[Inbound]) -> None:
            t = time.time()
            on_commit([_event_id(m.payload) for m in batch], t)

        self.gw.on_committed = committed
        self.gw.start()

    def stop(self) -> None:
        if self.gw is not None:
            self.gw.stop()
            self.gw = None
        # End the persistent session, or the broker keeps queueing the next run's traffic for it.
        u = parse_mqtt_url(self.url)
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        c.username_pw_set(u.username, u.password)
        c.connect(u.host, u.port, clean_start=True)
        c.loop_start()
        time.sleep(0.3)
        c.disconnect()
        c.loop_stop()

    def count(self) -> int:
        with self.pool.connection() as conn:
            row: Any = conn.execute("SELECT count(*) AS n FROM dose_events").fetchone()
            return int(row["n"])


def _event_id(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("event_id", ""))
    except ValueError:
        return ""


class BaselinePipeline(Pipeline):
    """paho → json.loads → COPY in batches (≤500 or 50 ms), paho's own acks. Nothing else."""

    name = "baseline (bare paho + JSON + COPY)"

    def __init__(self, url: str, db_url: str) -> None:
        self.url, self.db_url = url, db_url
        self.inbox: queue.Queue[bytes] = queue.Queue()
        self.stopping = threading.Event()
        self.client: mqtt.Client | None = None
        self.thread: threading.Thread | None = None
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS bench_baseline (dispenser_id text, event_id text,"
                " seq bigint, type text, occurred_at timestamptz, payload jsonb)"
            )

    def start(self, on_commit: Callable[[list[str], float], None]) -> None:
        self.stopping.clear()
        u = parse_mqtt_url(self.url)
        ready = threading.Event()
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"bench-base-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        c.username_pw_set(u.username, u.password)
        c.on_message = lambda _c, _u, m: self.inbox.put(bytes(m.payload))
        c.on_subscribe = lambda *_: ready.set()

        def on_connect(cl: mqtt.Client, *_: object) -> None:
            cl.subscribe("dosewatch/v1/dispensers/+/events", qos=1)

        c.on_connect = on_connect
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = 10_000
        c.connect(u.host, u.port, properties=props)
        c.loop_start()
        ready.wait(10)
        self.client = c
        self.thread = threading.Thread(target=self._write_loop, args=(on_commit,), daemon=True)
        self.thread.start()

    def _write_loop(self, on_commit: Callable[[list[str], float], None]) -> None:
        with psycopg.connect(self.db_url) as conn:
            while not self.stopping.is_set():
                try:
                    batch = [self.inbox.get(timeout=0.2)]
                except queue.Empty:
                    continue
                deadline = time.monotonic() + 0.05
                while len(batch) < 500:
                    try:
                        batch.append(self.inbox.get(timeout=max(0.0, deadline - time.monotonic())))
                    except queue.Empty:
                        break
                rows = [json.loads(p) for p in batch]
                with (
                    conn.cursor() as cur,
                    cur.copy(
                        "COPY bench_baseline"
                        " (dispenser_id, event_id, seq, type, occurred_at, payload)"
                        " FROM STDIN"
                    ) as copy,
                ):
                    for r in rows:
                        copy.write_row(
                            (
                                r.get("dispenser_id"),
                                r.get("event_id"),
                                r.get("seq"),
                                r.get("type"),
                                r.get("occurred_at"),
                                json.dumps(r),
                            )
                        )
                conn.commit()
                on_commit([str(r.get("event_id")) for r in rows], time.time())

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def count(self) -> int:
        with psycopg.connect(self.db_url) as conn:
            row = conn.execute("SELECT count(*) FROM bench_baseline").fetchone()
            return int(row[0]) if row else 0


# --- running --------------------------------------------------------------------------------------


def register_fleet(pool: ConnectionPool, ids: list[str], now: datetime) -> None:
    with pool.connection() as conn, conn.transaction():
        for d in ids:
            p = registry.create_patient(
                conn, name=f"Bench {d}", phone="+46 90 000 0000", address=None, note=None
            )
            registry.create_dispenser(conn, dispenser_id=d, patient_id=p["id"])
            schedule_sql.save_schedule(
                conn,
                d,
                timezone="Europe/Stockholm",
                doses=[{"time": "08:00", "window_min": 45}, {"time": "20:00", "window_min": 45}],
                valid_from=(now - timedelta(days=1)).date(),
                now=now,
            )
            schedule_sql.replan(conn, d, now - timedelta(days=1), now + timedelta(hours=48))


def run_once(
    pipeline: Pipeline,
    broker: ProjectBroker,
    ids: list[str],
    per: int,
    rate: float | None,
    start: datetime,
) -> tuple[int, float, list[float], int]:
    """Publish ids × per events; return (acked, seconds first publish → last commit, latencies
    in ms, rows stored by this run)."""
    run = uuid.uuid4().hex[:8]
    n = len(ids) * per
    commits: dict[str, float] = {}
    lock = threading.Lock()
    all_in = threading.Event()

    def on_commit(event_ids: list[str], t: float) -> None:
        with lock:
            for e in event_ids:
                if e.startswith(run):
                    commits.setdefault(e, t)
            if len(commits) >= n:
                all_in.set()

    before = pipeline.count()
    pipeline.start(on_commit)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    creds = {d: broker.users[d] for d in ids}
    proc = ctx.Process(
        target=_publisher_child, args=(broker.port, ids, per, run, start, creds, rate, child)
    )
    proc.start()
    time.sleep(1.0)  # let the child import and connect its dispensers before "go"
    parent.send("go")
    acked, sent = parent.recv()
    proc.join()
    all_in.wait(timeout=300)
    time.sleep(0.5)  # let a late duplicate (if any) land before counting rows
    pipeline.stop()
    stored = pipeline.count() - before
    index = {d: i for i, d in enumerate(ids)}
    lat = []
    for e, t in commits.items():
        d, seq = e[len(run) + 1 :].rsplit("-", 1)
        s = sent[index[d] * per + int(seq) - 1]
        lat.append((t - s) * 1000)
    first = min(x for x in sent if x > 0)
    last = max(commits.values()) if commits else time.time()
    return acked, last - first, sorted(lat), stored


def pct(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(round(p / 100 * (len(sorted_ms) - 1))))]


def measure(
    pipeline: Pipeline,
    broker: ProjectBroker,
    ids: list[str],
    per: int,
    per_paced: int,
    rate: float,
    start: datetime,
) -> Result:
    """One pipeline's unpaced (throughput) and paced (latency) runs."""
    print(f"{pipeline.name}: {len(ids) * per} events unpaced ...", flush=True)
    acked, secs, _, stored = run_once(pipeline, broker, ids, per, None, start)
    r = Result(pipeline.name, len(ids) * per, secs, stored)
    print(f"  {r.rate:,.0f} events/s, stored {stored}/{acked}", flush=True)
    print(f"  paced {rate:,.0f}/s, {len(ids) * per_paced} events ...", flush=True)
    acked2, secs2, lat, stored2 = run_once(
        pipeline, broker, ids, per_paced, rate, start + timedelta(days=1)
    )
    r.p50_ms, r.p99_ms = pct(lat, 50), pct(lat, 99)
    r.paced_rate = len(ids) * per_paced / secs2
    r.paced_n, r.paced_stored = len(ids) * per_paced, stored2
    print(f"  p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, stored {stored2}/{acked2}", flush=True)
    return r


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=50_000, help="events in the throughput run")
    ap.add_argument("--dispensers", type=int, default=500)
    ap.add_argument("--rate", type=float, default=5000.0, help="paced rate for latency, events/s")
    ap.add_argument("--latency-events", type=int, default=25_000)
    ap.add_argument("--runs", type=int, default=3, help="rounds (the report gives medians)")
    ap.add_argument("--append", type=Path, default=None, help="append the results to this file")
    args = ap.parse_args(argv)

    ids = dispenser_ids(args.dispensers)
    per = max(1, args.events // len(ids))
    per_paced = max(1, args.latency_events // len(ids))
    start = datetime.now(UTC).replace(microsecond=0)
    users = {"gateway": uuid.uuid4().hex, **{d: uuid.uuid4().hex for d in ids}}
    rounds: list[Round] = []
    with (
        private_database(ADMIN_URL, "dosewatch_bench") as db_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mode = migrate(db_url)
        pool = make_pool(db_url, max_size=4, name="bench")
        try:
            register_fleet(pool, ids, start)
            with ProjectBroker(Path(tmp) / "broker", users) as broker:
                gw_url = broker.url("gateway")
                gateway, baseline = GatewayPipeline(gw_url, pool), BaselinePipeline(gw_url, db_url)
                for k in range(args.runs):
                    # The machine is shared: alternate which pipeline goes first, so a change in
                    # the load does not always favour the same one.
                    order = (gateway, baseline) if k % 2 == 0 else (baseline, gateway)
                    load = os.getloadavg()[0]
                    got = {
                        p.name: measure(p, broker, ids, per, per_paced, args.rate, start)
                        for p in order
                    }
                    rounds.append(Round(got[gateway.name], got[baseline.name], load))
        finally:
            pool.close()
    report = render(rounds, args, mode)
    print(report)
    if args.append is not None:
        with args.append.open("a", encoding="utf-8") as f:
            f.write(report)


@dataclass
class Round:
    gateway: Result
    baseline: Result
    load: float  # 1-minute load average when the round started

    @property
    def ratio(self) -> float:
        return self.gateway.rate / self.baseline.rate


def render(rounds: list[Round], args: argparse.Namespace, mode: str) -> str:
    uname = platform.uname()
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    uname_a = subprocess.run(
        ["uname", "-a"], capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        f"\n## bench/ingest — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n",
        f"- machine: `nproc` = {nproc}; `uname -a` = `{uname_a or uname}`",
        f"- storage mode: {mode}; {args.dispensers} dispensers, each publishing as itself through "
        "Mosquitto with the project configuration (deploy/mosquitto) on the same machine; "
        "publisher in its own process; PostgreSQL on 127.0.0.1 (private database).",
        f"- {len(rounds)} rounds, the pipelines alternating which goes first; 1-minute load "
        "average at the start of each round: " + ", ".join(f"{r.load:.1f}" for r in rounds),
        "",
        "| round | pipeline | stored (loss-free?) | sustained stored/s | paced rate"
        " | p50 publish→commit | p99 publish→commit |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, rnd in enumerate(rounds, 1):
        for r in (rnd.gateway, rnd.baseline):
            assert r.paced_n is not None and r.paced_stored is not None
            assert r.paced_rate is not None and r.p50_ms is not None and r.p99_ms is not None
            ok = "yes" if r.stored == r.n and r.paced_stored == r.paced_n else "NO"
            lines.append(
                f"| {i} | {r.name} | {r.stored:,} + {r.paced_stored:,} ({ok}) | {r.rate:,.0f} | "
                f"{r.paced_rate:,.0f}/s | {r.p50_ms:.0f} ms | {r.p99_ms:.0f} ms |"
            )

    def median(values: list[float]) -> float:
        return statistics.median(values)

    gw_p99 = median([r.gateway.p99_ms or 0.0 for r in rounds])
    base_p99 = median([r.baseline.p99_ms or 0.0 for r in rounds])
    lines += [
        "",
        f"Median of {len(rounds)}: gateway {median([r.gateway.rate for r in rounds]):,.0f}/s, "
        f"baseline {median([r.baseline.rate for r in rounds]):,.0f}/s; gateway / baseline "
        f"stored rate **{median([r.ratio for r in rounds]):.0%}** (per round: "
        + ", ".join(f"{r.ratio:.0%}" for r in rounds)
        + f"); p99 publish→commit at {args.rate:,.0f}/s: gateway **{gw_p99:.0f} ms**, "
        f"baseline {base_p99:.0f} ms.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
