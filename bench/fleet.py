"""bench/fleet: 10,000 dispensers connected at once, the 08:00 rush, end to end.

    .venv/bin/python -m bench.fleet [--devices 10000] [--window-min 2] [--miss 0.005]
                                    [--append BENCHMARKS.md] [--json FILE]

Everything is real and on loopback: a Mosquitto started here with the project's configuration
(deploy/mosquitto: authentication, the topic ACL, unlimited queues), every dispenser with its
own password written as ``dosewatch dispenser provision`` writes it; a private database on the
machine's PostgreSQL (DOSEWATCH_BENCH_DATABASE_URL's server, default 127.0.0.1:5432, dropped at
the end); ``dosewatch gateway`` and two ``dosewatch alarms`` as child processes, console-only
(no Twilio settings: nothing leaves the machine). The devices are one more child process
(``bench.fleet_devices``): one asyncio loop, one paho client and one TCP connection each.

The rush: every dispenser's dose is due at the same minute, with a ``--window-min`` window;
``--miss`` of the patients never take it (their device reports ``dose_not_taken`` when the
window closes), the others take it at a time drawn over the window. Measured: events stored
per second (when each becomes visible in the database), publish → stored p50/p99 and the
gateway's own lag gauge, for every missed-dose alarm the time from its window closing to the
commit of the alarm with its first notification (the NOTIFY a console hears), CPU seconds and
peak RSS of every process, and ``dosewatch sim check``'s comparison of the devices' truth with
what the service concluded, through the public API (must be 0 differences).

Baseline in the same run: a fresh broker, the same devices and the same rush, to a plain
paho subscriber that only counts what it receives: the bare pipeline, so the gateway's and the
database's cost is the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row

from bench.alarms import machine
from bench.databases import private_database
from bench.fleet_watch import Usage, Watch, proc_usage, reap
from dispenser_sim.broker import ProjectBroker, _free_port
from dispenser_sim.crowd import Rush
from dosewatch.broker_credentials import new_password

ADMIN = os.environ.get(
    "DOSEWATCH_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parent.parent
TZ = "Europe/Stockholm"


def raise_fd_limit(need: int) -> None:
    """Mosquitto holds one descriptor per connection and inherits this limit from us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < need:
        raise SystemExit(f"bench.fleet: RLIMIT_NOFILE hard limit {hard} < {need}; raise it")
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    for line in conf.splitlines():
        if line.startswith("max_connections") and 0 <= int(line.split()[1]) < need:
            raise SystemExit(f"bench.fleet: the project's mosquitto.conf says {line!r}")


def next_minute(after: datetime) -> datetime:
    return (after + timedelta(minutes=1)).replace(second=0, microsecond=0)


def set_up(url: str, ids: list[str]) -> None:
    """Teams on duty, and a patient and dispenser per id (bulk: not what is measured)."""
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO teams (name, created_at) SELECT 'team ' || g, %s"
            " FROM generate_series(1, 20) g",
            (now,),
        )
        conn.execute(
            "INSERT INTO nurses (team_id, name, phone, language, created_at) SELECT t.id,"
            " 'nurse ' || t.id || '-' || r, '+4670' || lpad((t.id * 10 + r)::text, 7, '0'),"
            " 'sv', %s FROM teams t, generate_series(1, 3) r",
            (now,),
        )
        conn.execute(
            "INSERT INTO shifts (team_id, nurse_id, starts_at, ends_at, role) SELECT n.team_id,"
            " n.id, %s, %s, (ARRAY['primary','backup','lead'])[1 + (n.id - 1) %% 3] FROM nurses n",
            (now - timedelta(hours=4), now + timedelta(hours=8)),
        )
        with conn.cursor().copy("COPY patients (name, phone, team_id) FROM STDIN") as copy:
            for n, d in enumerate(ids):
                copy.write_row((f"Patient of {d}", "+46 90 555 0000", 1 + n % 20))
        conn.execute(
            "INSERT INTO dispensers (id, patient_id) SELECT substr(name, 12), id FROM patients"
        )


def save_schedules(url: str, ids: list[str], due: datetime, window_min: int) -> float:
    """One dose a day at ``due``'s local minute, saved as the admin API saves a schedule (a
    version and its slots, one transaction each); the running gateway publishes the configs."""
    from zoneinfo import ZoneInfo

    from dosewatch.db.pool import make_pool
    from dosewatch.usecases.schedules import change_schedule

    local = due.astimezone(ZoneInfo(TZ))
    doses = [{"time": f"{local:%H:%M}", "window_min": window_min}]
    t0 = time.monotonic()
    pool = make_pool(url, max_size=4, name="bench-fleet-setup")

    def save(part: list[str]) -> None:
        with pool.connection() as conn:
            for d in part:
                now = datetime.now(UTC)
                change_schedule(
                    conn, d, timezone=TZ, doses=doses, valid_from=local.date(), valid_until=None,
                    effective_from=now, created_by="bench", now=now, horizon=timedelta(hours=48),
                )  # fmt: skip

    try:  # four admins at once: set-up, not the measure
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(save, [ids[i::4] for i in range(4)]))
        with pool.connection() as conn:
            conn.execute("ANALYZE")
    finally:
        pool.close()
    return time.monotonic() - t0


def push_configs(url: str, broker: ProjectBroker) -> None:
    """Publish every config with the gateway's own down-link code, round after round.

    The gateway's loop publishes 200 configs every 5 s, 20–40 a second on this machine: 10,000
    would take minutes before every rush (docs/scaling.md notes it). Calling the same
    ``publish_pending`` back to back, as the gateway user, gets the fleet configured sooner
    without changing what a device receives; the gateway's own loop runs alongside.
    """
    import paho.mqtt.client as mqtt

    from dosewatch.db import status as status_sql
    from gateway.downlink import publish_pending

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-fleet-dl-{os.getpid()}")
    c.username_pw_set("gateway", broker.users["gateway"])
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
            while status_sql.configs_to_publish(conn, 1):
                publish_pending(conn, c, datetime.now(UTC))
    finally:
        c.disconnect()
        c.loop_stop()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Child:
    """A child process with its output in a log file; reaped with ``wait4`` for its usage."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )
        self.usage: Usage | None = None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, marker: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.text()
            if marker in text:
                return text
            if "FAILED" in text or not alive(self.proc.pid):
                break
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name}: no {marker!r} in {timeout_s:.0f} s:\n{self.text()[-3000:]}"
        )

    def stop(self, timeout_s: float = 20.0) -> Usage | None:
        # os.kill, not Popen.terminate: that polls first and would reap the child itself,
        # and with it the rusage only wait4 can give.
        if self.usage is None:
            pid = self.proc.pid
            last = proc_usage(pid)
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            self.usage = reap(pid, timeout_s)
            if self.usage is None:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self.usage = reap(pid, 10) or last
            self.proc.returncode = -1  # reaped here; Popen must not wait for it again
        return self.usage


def devices(
    name: str, port: int, creds: dict[str, str], rush: Rush, work: Path, env: dict[str, str]
) -> Child:
    out = work / name
    out.mkdir()
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "credentials": creds,
        "rush": asdict(rush),
        "run_id": name,
    }
    (out / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    argv = [sys.executable, "-m", "bench.fleet_devices", str(out / "spec.json"), str(out)]
    return Child(name, argv, env, out / "devices.log")


def ready(child: Child, due: datetime, timeout_s: float) -> tuple[float, float, datetime]:
    line = next(
        ln for ln in child.wait_for("READY", timeout_s).splitlines() if ln.startswith("READY")
    )
    _, connected, configured, last_close = line.split()
    left = (due - datetime.now(UTC)).total_seconds()
    if left < 3:
        raise RuntimeError(
            f"the devices were ready {-left:.0f} s after the dose was due: raise --lead-s"
        )
    return float(connected), float(configured), datetime.fromisoformat(last_close)


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(p * len(s))) - 1))] if s else float("nan")


def published(work: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((work / name / "published.json").read_text("utf-8"))
    return data


def wait_until(cond: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.25)
    return bool(cond())


def rates(times: list[float], start: float, end: float) -> tuple[float, float]:
    """Mean per second over [start, end] and the busiest whole second."""
    inside = [t for t in times if start <= t <= end]
    bins: dict[int, int] = {}
    for t in inside:
        bins[int(t)] = bins.get(int(t), 0) + 1
    return len(inside) / max(end - start, 1e-9), float(max(bins.values(), default=0))


def child_env(url: str) -> dict[str, str]:
    """Our environment without any Twilio setting (console-only: nothing leaves the machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSEWATCH_")}
    return {**env, "DOSEWATCH_DATABASE_URL": url, "DOSEWATCH_TIMEZONE": TZ}


def broker_pid(broker: ProjectBroker) -> int:
    proc = getattr(broker, "_proc", None)  # ProjectBroker keeps its process to itself
    assert proc is not None
    return int(proc.pid)


def reconcile(url: str, truth_path: Path) -> list[Any]:
    """``dosewatch sim check``'s comparison, through the public API (in process)."""
    from fastapi.testclient import TestClient

    from dashboards.app import create_app
    from dispenser_sim.reconcile import check
    from dispenser_sim.staff import Api
    from dispenser_sim.truth import Truth
    from dosewatch.clock import SystemClock
    from dosewatch.db import users as user_sql
    from dosewatch.db.pool import make_pool

    pool = make_pool(url, max_size=4, name="bench-fleet-check")
    try:
        with pool.connection() as conn, conn.transaction():
            _, secret = user_sql.create_token(
                conn, name="bench fleet", role="admin", team_id=None, now=datetime.now(UTC)
            )
        app = create_app(pool, SystemClock(), default_timezone=TZ)
        with TestClient(app, headers={"Authorization": f"Bearer {secret}"}) as http:
            return check(Api(http), Truth.load(truth_path), margin=timedelta(0))
    finally:
        pool.close()


def pipeline(args: argparse.Namespace, creds: dict[str, str], work: Path) -> dict[str, Any]:
    from dosewatch.db.migrate import migrate

    ids = sorted(creds)
    rush = Rush(miss=args.miss, seed=args.seed)
    r: dict[str, Any] = {}
    with private_database(args.admin_url, "dosewatch_bench_fleet") as url:
        migrate(url)
        with psycopg.connect(url) as conn:
            ext = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
            r["storage"] = "TimescaleDB" if ext.fetchone() else "plain PostgreSQL"
        set_up(url, ids)
        env = child_env(url)
        broker = ProjectBroker(work / "broker", {"gateway": new_password(), **creds})
        broker.start()
        port = _free_port()
        gw_env = {
            **env,
            "DOSEWATCH_MQTT_URL": broker.url("gateway"),
            "DOSEWATCH_MQTT_CLIENT_ID": f"bench-fleet-{os.getpid()}",
            "DOSEWATCH_MQTT_PROTOCOL": "5",
            "DOSEWATCH_GATEWAY_METRICS_PORT": str(port),
        }
        cli = [sys.executable, "-m", "service.cli"]
        children = [Child("gateway", [*cli, "gateway"], gw_env, work / "gateway.log")]
        children += [
            Child(
                f"alarms {i}",
                [*cli, "alarms"],
                {**env, "DOSEWATCH_MQTT_URL": broker.url("gateway")},
                work / f"alarms{i}.log",
            )
            for i in (1, 2)
        ]
        watch = Watch(url, f"http://127.0.0.1:{port}/metrics")
        dev: Child | None = None
        try:
            children[0].wait_for("MQTT 5 connected", 60)
            watch.start()
            due = next_minute(datetime.now(UTC) + timedelta(seconds=args.lead_s))
            # The devices connect while the schedules are saved and wait for their configs, as
            # a fleet already online would; the rush itself starts at the due minute.
            rush = replace(rush, ready_timeout_s=(due - datetime.now(UTC)).total_seconds())
            dev = devices("pipeline", broker.port, creds, rush, work, env)
            r["schedules_s"] = save_schedules(url, ids, due, args.window_min)
            t1 = time.monotonic()
            push_configs(url, broker)
            r["configs_s"] = time.monotonic() - t1
            left = (due - datetime.now(UTC)).total_seconds()
            r["connect_s"], r["configured_s"], last_close = ready(dev, due, left)
            r["due"], r["last_close"] = due.isoformat(), last_close.isoformat()
            dev.wait_for("DONE", (last_close - datetime.now(UTC)).total_seconds() + 120)
            dev.stop()
            pub = published(work, "pipeline")
            if pub["dropped"] or pub["refused"]:
                raise RuntimeError(f"devices lost their connection: {pub['dropped'][:5]}")
            events = [p for p in pub["published"] if p["event_id"]]
            keys = [(p["dispenser_id"], p["event_id"]) for p in events]
            wait_until(
                lambda: all(k in watch.seen for k in keys) or watch.stored() >= len(keys), 120
            )
            r["seen_only_at_the_end"] = watch.catch_up()
            wait_until(lambda: len(watch.alarms) >= len(pub["missing"]), 60)
            watch.sample_backends()
            watch.stop()
            r["usage"] = {"mosquitto": proc_usage(broker_pid(broker))}
            for c in children:
                r["usage"][c.name] = c.stop()
            r["usage"]["devices"] = dev.usage
            r["usage"]["postgres backends"] = watch.backend_usage()
            r.update(figures(url, pub, events, watch, due, last_close))
            r["differences"] = [asdict(d) for d in reconcile(url, work / "pipeline" / "truth.json")]
        finally:
            watch.stop()
            for c in [*children, *([dev] if dev else [])]:
                c.stop()
            broker.stop()
    return r


def figures(
    url: str,
    pub: dict[str, Any],
    events: list[dict[str, Any]],
    watch: Watch,
    due: datetime,
    last_close: datetime,
) -> dict[str, Any]:
    r: dict[str, Any] = {"published": len(pub["published"]), "events": len(events)}
    stored = [
        watch.seen[(p["dispenser_id"], p["event_id"])]
        for p in events
        if (p["dispenser_id"], p["event_id"]) in watch.seen
    ]
    lags = [
        watch.seen[(p["dispenser_id"], p["event_id"])] - p["at"]
        for p in events
        if (p["dispenser_id"], p["event_id"]) in watch.seen
    ]
    r["events_stored"] = len(stored)
    r["stored_per_s"], r["stored_peak_per_s"] = rates(
        stored, due.timestamp(), last_close.timestamp()
    )
    r["lag_p50_s"], r["lag_p99_s"], r["lag_max_s"] = (
        percentile(lags, 0.5),
        percentile(lags, 0.99),
        max(lags, default=float("nan")),
    )
    r["gauge_lag_max_s"], r["gauge_lag_messages_max"] = watch.lag_s_max, watch.lag_messages_max
    r["poll_interval_s"] = watch.interval
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.id, a.kind, extract(epoch FROM s.window_end)::float8 FROM alarms a"
            " LEFT JOIN dose_slots s ON s.id = a.slot_id"
        ).fetchall()
        apart = conn.execute(
            "SELECT count(*) FROM alarms a LEFT JOIN notifications n ON n.alarm_id = a.id"
            " AND n.step_index = 0 WHERE a.kind = 'missed_dose'"
            " AND (n.id IS NULL OR n.created_at <> a.opened_at)"
        ).fetchone()
        statuses = conn.execute("SELECT count(*) FROM dispenser_status").fetchone()
    missed = [(i, w) for i, kind, w in rows if kind == "missed_dose"]
    delays = [watch.alarms[i] - w for i, w in missed if i in watch.alarms]
    r["alarms"], r["missed_alarms"], r["missing"] = len(rows), len(missed), len(pub["missing"])
    r["alarms_heard"] = len(delays)
    r["alarm_p99_s"], r["alarm_max_s"] = percentile(delays, 0.99), max(delays, default=float("nan"))
    r["alarms_without_first_notification"] = apart[0] if apart else -1
    r["status_rows"] = statuses[0] if statuses else -1
    return r


def baseline(args: argparse.Namespace, creds: dict[str, str], work: Path) -> dict[str, Any]:
    """The same devices and rush through a fresh broker to a subscriber that only counts."""
    import paho.mqtt.client as mqtt

    from dosewatch.domain.protocol import TOPIC_ROOT

    password = new_password()
    broker = ProjectBroker(work / "broker-base", {"gateway": password, **creds})
    broker.start()
    got: dict[tuple[str, str], float] = {}
    counts = {"events": 0, "status": 0, "online": 0}

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[1]
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "events":
            body = json.loads(msg.payload)
            got.setdefault((body["dispenser_id"], body["event_id"]), time.time())

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-fleet-counter")
    c.username_pw_set("gateway", password)
    c.on_message = on_message
    c.connect("127.0.0.1", broker.port)
    c.subscribe([(f"{TOPIC_ROOT}/+/{k}", 1) for k in counts])
    loop = threading.Thread(target=c.loop_forever, daemon=True)
    loop.start()
    due = next_minute(datetime.now(UTC) + timedelta(seconds=30 + args.devices / 200))
    from zoneinfo import ZoneInfo

    local = due.astimezone(ZoneInfo(TZ))
    info = None
    for d in sorted(creds):  # what the gateway's down-link would have published
        config = {
            "v": 1,
            "dispenser_id": d,
            "version": 1,
            "timezone": TZ,
            "doses": [{"time": f"{local:%H:%M}", "window_min": args.window_min}],
            "valid_from": local.date().isoformat(),
        }
        info = c.publish(f"{TOPIC_ROOT}/{d}/config", json.dumps(config), qos=1, retain=True)
    if info is not None:
        info.wait_for_publish(timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSEWATCH_")}
    dev = devices("baseline", broker.port, creds, Rush(miss=args.miss, seed=args.seed), work, env)
    r: dict[str, Any] = {}
    try:
        left = (due - datetime.now(UTC)).total_seconds()
        r["connect_s"], r["configured_s"], last_close = ready(dev, due, left)
        dev.wait_for("DONE", (last_close - datetime.now(UTC)).total_seconds() + 120)
        dev.stop()
        pub = published(work, "baseline")
        events = [p for p in pub["published"] if p["event_id"]]
        wait_until(lambda: len(got) >= len(events), 60)
        assert loop.ident is not None
        counter_cpu = time.clock_gettime(time.pthread_getcpuclockid(loop.ident))
        r["usage"] = {
            "mosquitto": proc_usage(broker_pid(broker)),
            "devices": dev.usage,
            "counting subscriber (thread)": Usage(counter_cpu, 0.0),
        }
        times = [
            got[(p["dispenser_id"], p["event_id"])]
            for p in events
            if (p["dispenser_id"], p["event_id"]) in got
        ]
        lags = [
            got[(p["dispenser_id"], p["event_id"])] - p["at"]
            for p in events
            if (p["dispenser_id"], p["event_id"]) in got
        ]
        r["events"], r["received"], r["counts"] = len(events), len(times), counts
        r["per_s"], r["peak_per_s"] = rates(times, due.timestamp(), last_close.timestamp())
        r["lag_p50_s"], r["lag_p99_s"] = percentile(lags, 0.5), percentile(lags, 0.99)
    finally:
        dev.stop()
        c.disconnect()
        loop.join(timeout=10)
        broker.stop()
    return r


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both pipelines, one after the other, on the same devices and credentials."""
    raise_fd_limit(args.devices + 200)
    creds = {f"DSP-F{n:05d}": new_password() for n in range(1, args.devices + 1)}
    with tempfile.TemporaryDirectory(prefix="dosewatch-bench-fleet-") as tmp:
        work = Path(tmp)
        started = datetime.now(UTC)
        load0 = os.getloadavg()[0]
        result: dict[str, Any] = {"pipeline": pipeline(args, creds, work)}
        result["baseline"] = baseline(args, creds, work)
    result.update(
        devices=args.devices,
        window_min=args.window_min,
        miss=args.miss,
        started=started.isoformat(),
        load_start=load0,
        load_end=os.getloadavg()[0],
        machine=machine(),
    )
    return result


def _usage_rows(usage: dict[str, Usage | None]) -> list[str]:
    return [
        f"| {name} | {u.cpu_s:.1f} s | {u.peak_rss_mb:.0f} MB |" if u else f"| {name} | ? | ? |"
        for name, u in usage.items()
    ]


def report(r: dict[str, Any]) -> str:
    p, b = r["pipeline"], r["baseline"]
    diffs = p["differences"]
    lines = [
        f"### bench/fleet — {r['devices']:,} dispensers, one {r['window_min']}-minute window, "
        f"{r['miss'] * 100:g} % missed ({r['started'][:16].replace('T', ' ')} UTC)",
        "",
        f"Machine: {r['machine']}; storage {p['storage']}; load average {r['load_start']:.1f} at "
        f"the start, {r['load_end']:.1f} at the end (a shared machine).",
        "",
        "| measure | gateway + 2 alarms | baseline: broker → counting subscriber |",
        "|---|---|---|",
        f"| schedules saved (one transaction each); then every config published "
        f"| {p['schedules_s']:.0f} s; {p['configs_s']:.0f} s | (published by the subscriber) |",
        f"| all devices connected (CONNACK) | {p['connect_s']:.1f} s | {b['connect_s']:.1f} s |",
        f"| dose events published (all messages) | {p['events']:,} ({p['published']:,}) "
        f"| {b['events']:,} |",
        f"| events stored (received), mean over the window | {p['stored_per_s']:.0f}/s "
        f"| {b['per_s']:.0f}/s |",
        f"| busiest second | {p['stored_peak_per_s']:.0f}/s | {b['peak_per_s']:.0f}/s |",
        f"| publish → stored (received) p50 / p99 | {p['lag_p50_s']:.2f} / {p['lag_p99_s']:.2f} s"
        f" (±{p['poll_interval_s']} s polling) | {b['lag_p50_s']:.3f} / {b['lag_p99_s']:.3f} s |",
        f"| gateway lag gauge, max (oldest uncommitted; messages) | {p['gauge_lag_max_s']:.2f} s;"
        f" {p['gauge_lag_messages_max']:.0f} | — |",
        f"| missed-dose alarms (patients who missed) | {p['missed_alarms']} ({p['missing']}) | — |",
        f"| window close → alarm + first notification committed: p99 / max "
        f"| {p['alarm_p99_s']:.2f} / {p['alarm_max_s']:.2f} s | — |",
        f"| alarms without their first notification queued in the same transaction "
        f"| {p['alarms_without_first_notification']} | — |",
        f"| reconciliation (`sim check`) | **{len(diffs)} differences** | — |",
        "",
        "| process (gateway run) | CPU | peak RSS |",
        "|---|---|---|",
        *_usage_rows(p["usage"]),
        "",
        "| process (baseline run) | CPU | peak RSS |",
        "|---|---|---|",
        *_usage_rows(b["usage"]),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--window-min", type=int, default=2)
    parser.add_argument("--miss", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lead-s", type=float, help="set-up to due time (default: by size)")
    parser.add_argument("--admin-url", default=ADMIN, help="PostgreSQL admin URL (loopback)")
    parser.add_argument("--append", help="append the result to this Markdown file")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    if urlsplit(args.admin_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("bench.fleet: the database must be on loopback")
    if args.lead_s is None:
        args.lead_s = 60 + args.devices / 50  # schedules saved, then every config published
    r = run(args)
    text = report(r)
    print(text)
    for d in r["pipeline"]["differences"][:20]:
        print(d)
    if args.json:
        Path(args.json).write_text(json.dumps(r, default=lambda u: asdict(u), indent=1), "utf-8")
    if args.append:
        with open(args.append, "a", encoding="utf-8") as f:
            f.write("\n" + text)
    if r["pipeline"]["differences"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
