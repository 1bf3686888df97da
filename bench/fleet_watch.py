"""What bench/fleet watches while the rush runs: processes, the database, the gateway's gauge.

* :class:`Proc`: CPU seconds and peak resident memory of one process, from ``/proc`` while it
  runs (``VmHWM`` is the kernel's own high-water mark, so sampling misses no peak) and from
  ``wait4`` when it is one of ours and exits.
* :class:`Watch`: a thread that, every ``interval``, notes which dose events have become
  visible in the database (so "stored" means committed, as a reader sees it), the CPU of every
  database backend of the bench database, and the gateway's own lag gauges from its
  Prometheus endpoint; and a listener for each alarm's NOTIFY (sent on commit).
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dosewatch.db.notices import CHANNEL, alarm_notices

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0


def proc_usage(pid: int) -> Usage | None:
    """CPU seconds (user + system) and peak RSS of a live process; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            status = f.read()
    except OSError:
        return None
    m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return Usage((int(fields[11]) + int(fields[12])) / TICK, int(m.group(1)) / 1024 if m else 0.0)


def reap(pid: int, timeout_s: float) -> Usage | None:
    """Wait for our child ``pid`` to exit (bounded) and return what ``wait4`` says it used."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got, _status, ru = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: its usage is lost
            return None
        if got == pid:
            return Usage(ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024)
        time.sleep(0.05)
    return None


@dataclass
class Watch:
    url: str  # the bench database
    metrics_url: str | None  # the gateway's Prometheus endpoint
    interval: float = 0.25
    seen: dict[tuple[str, str], float] = field(default_factory=dict)  # event → first visible
    alarms: dict[int, float] = field(default_factory=dict)  # alarm id → NOTIFY received
    backends: dict[int, Usage] = field(default_factory=dict)  # pid → last sample
    lag_s_max: float = 0.0
    lag_messages_max: float = 0.0
    lag_samples: int = 0
    scans: int = 0
    _snapshot: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._conn = psycopg.connect(self.url, autocommit=True)
        self._listener = psycopg.connect(self.url, autocommit=True)
        self._listener.execute(f"LISTEN {CHANNEL}")
        # Our own two backends are the bench's, not the pipeline's: left out of the sum.
        self.own_pids = {self._conn.info.backend_pid, self._listener.info.backend_pid}
        for target in (self._poll, self._listen):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        if self._stop.is_set() or not self._threads:
            return
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._conn.close()
        self._listener.close()

    def _poll(self) -> None:
        last_backends = 0.0
        while not self._stop.wait(self.interval):
            now = time.time()
            for d, e in self._new_events():
                self.seen.setdefault((d, e), now)
            self.scans += 1
            if now - last_backends >= 1.0:
                last_backends = now
                self.sample_backends()
                self._scrape()

    def _new_events(self) -> list[tuple[str, str]]:
        """Events committed since the previous poll, and a few seen before (32-bit xids; a
        bench run is far from a wraparound). Only recent rows leave the server, so polling
        four times a second stays cheap."""
        with self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = self._conn.execute(
                "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint % 4294967296"
            ).fetchone()
            if self._snapshot is None:
                rows = self._conn.execute("SELECT dispenser_id, event_id FROM dose_events")
            else:
                # Every transaction below the previous snapshot's xmin had ended by then, so its
                # rows were returned already. Above it, rows may be new or not (a row written
                # in a savepoint carries the subtransaction's xid, which no snapshot lists), so
                # they all come back and ``seen`` keeps each row's first sighting.
                rows = self._conn.execute(
                    "SELECT dispenser_id, event_id FROM dose_events WHERE xmin::text::bigint >= %s",
                    (self._snapshot,),
                )
            out = [(d, e) for d, e in rows]
        self._snapshot = row[0] if row else None
        return out

    def catch_up(self) -> int:
        """Any stored event the polls did not see, stamped now; how many (should be 0)."""
        now, missed = time.time(), 0
        with psycopg.connect(self.url) as conn:
            for d, e in conn.execute("SELECT dispenser_id, event_id FROM dose_events"):
                if (d, e) not in self.seen:
                    self.seen[(d, e)] = now
                    missed += 1
        return missed

    def stored(self) -> int:
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT count(*) FROM dose_events").fetchone()
        return int(row[0]) if row else 0

    def sample_backends(self) -> None:
        pids = [
            r[0]
            for r in self._conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
        ]
        for pid in pids:
            if pid in self.own_pids:
                continue
            u = proc_usage(pid)
            if u is not None:
                self.backends[pid] = u

    def _scrape(self) -> None:
        if self.metrics_url is None:
            return
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2) as r:
                text = r.read().decode()
        except (OSError, urllib.error.URLError):
            return
        for name, attr in (
            ("dosewatch_gateway_consumer_lag_seconds", "lag_s_max"),
            ("dosewatch_gateway_consumer_lag_messages", "lag_messages_max"),
        ):
            m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
            if m:
                setattr(self, attr, max(getattr(self, attr), float(m.group(1))))
        self.lag_samples += 1

    def _listen(self) -> None:
        while not self._stop.is_set():
            for note in self._listener.notifies(timeout=0.5):
                at = time.time()
                for alarm in alarm_notices(note.payload):
                    if alarm["op"] == "insert":
                        self.alarms.setdefault(alarm["id"], at)

    def backend_usage(self) -> Usage:
        """All backends of the pipeline together: CPU summed, the largest peak RSS."""
        us = list(self.backends.values())
        return Usage(sum(u.cpu_s for u in us), max((u.peak_rss_mb for u in us), default=0.0))
