"""``dosewatch demo``: the Umeå fleet's 30 days of history, then live; and three patients whose
first dose falls due within a minute or two.

The three: one takes the dose on time, one a little late but inside the window, and one never
takes it — so a missed-dose alarm opens within about three minutes of starting, while the
fleet's history is still being made (:mod:`service.demo_fleet` says how the two stay apart).
With nothing configured the demo has a database of its own in the embedded server, made anew
at each start.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg_pool import ConnectionPool

from dispenser_sim.fleet import VirtualDispenser
from dosewatch.config import ConfigError, Settings
from dosewatch.db import DbConn, registry
from dosewatch.db import schedules as schedule_sql
from dosewatch.db import scope as scope_sql
from dosewatch.db import teams as team_sql
from dosewatch.domain.schedule import local_instant
from service.accounts import demo_accounts

DEMO_FLEET = (
    # dispenser id, patient, phone, address, seconds after due the dose is taken (None: never)
    ("DEMO-001", "Astrid Lindqvist", "+46 90 123 4501", "Storgatan 1, Umeå", 5),
    ("DEMO-002", "Bertil Nyström", "+46 90 123 4502", "Kungsgatan 12, Umeå", 30),
    ("DEMO-003", "Carin Holmberg", "+46 90 123 4503", "Rådhusesplanaden 7, Umeå", None),
)
WINDOW_MIN = 1
DEMO_TEAM = "Umeå hemtjänst öst"  # the Umeå fleet's first team: the demo nurse sees both
FLEET = "umea"
HISTORY_DAYS = 30
DEMO_DATABASE = "dosewatch_demo"


def first_due(now: datetime, tz: ZoneInfo) -> datetime:
    """The first whole minute at least 20 s ahead that a schedule's HH:MM dose time can name.

    Computed in UTC (every zone's minutes start on UTC minutes), then checked against the
    schedule rule: during the repeated hour of the autumn change, the second occurrence of a
    wall time cannot be named by HH:MM (it means the first), so those minutes are skipped and
    the demo's dose falls due just after the repeated hour.
    """
    earliest = now.astimezone(UTC) + timedelta(seconds=20)
    due = earliest.replace(second=0, microsecond=0)
    if due < earliest:
        due += timedelta(minutes=1)
    while True:
        local = due.astimezone(tz)
        if local_instant(local.date(), local.time(), tz) == due:
            return due
        due += timedelta(minutes=1)


def set_up(conn: DbConn, now: datetime, tz_name: str, horizon: timedelta) -> list[VirtualDispenser]:
    """Create (or reuse) the demo patients and dispensers and give them a schedule due soon."""
    tz = ZoneInfo(tz_name)
    due = first_due(now, tz)
    local_due = due.astimezone(tz)
    doses = [{"time": local_due.strftime("%H:%M"), "window_min": WINDOW_MIN}]
    fleet = []
    for dispenser_id, name, phone, address, take_after in DEMO_FLEET:
        if registry.get_dispenser(conn, dispenser_id) is None:
            patient = registry.create_patient(
                conn, name=name, phone=phone, address=address, note="demo patient"
            )
            registry.create_dispenser(conn, dispenser_id=dispenser_id, patient_id=patient["id"])
        schedule_sql.save_schedule(
            conn, dispenser_id, timezone=tz_name, doses=doses, valid_from=local_due.date(), now=now
        )
        schedule_sql.replan(conn, dispenser_id, now, now + horizon)
        assert local_instant(local_due.date(), local_due.time(), tz) == due
        fleet.append(
            VirtualDispenser(
                dispenser_id, [due], None if take_after is None else timedelta(seconds=take_after)
            )
        )
    return fleet


def sign_in(conn: DbConn, now: datetime) -> list[str]:
    """Put the demo patients in the demo team; give the demo admin, nurse and pharmacist new
    passwords and make an admin API token. Returns the lines to print."""
    row = conn.execute("SELECT id FROM teams WHERE name = %s", (DEMO_TEAM,)).fetchone()
    team_id = row["id"] if row else team_sql.create_team(conn, DEMO_TEAM, now)["id"]
    for dispenser_id, *_ in DEMO_FLEET:
        dispenser = registry.get_dispenser(conn, dispenser_id)
        if dispenser is not None:
            team_sql.set_patient_team(conn, dispenser["patient_id"], team_id)
    accounts, token = demo_accounts(conn, team_id, now)
    width = max(len(a.username) for a in accounts)
    lines = [
        f"Sign in as {a.username:<{width}}  password {a.password}  ({a.role})" for a in accounts
    ]
    return [*lines, f"API token: {token}"]


def refuse_unfit(conn: DbConn) -> None:
    """The demo adds a simulated fleet's history: only to a database with no one else in it."""
    others = conn.execute(
        "SELECT count(*) AS n FROM dispensers WHERE NOT (id = ANY(%s))",
        ([d for d, *_ in DEMO_FLEET],),
    ).fetchone()
    if others is not None and others["n"]:
        raise ConfigError(
            f"the demo makes {HISTORY_DAYS} days of a simulated fleet's history, so it needs a"
            f" database of its own, and DOSEWATCH_DATABASE_URL's holds {others['n']}"
            " dispenser(s) already. Unset it (the demo then uses its own embedded database) or"
            " point it at an empty database."
        )


def run_demo(settings: Settings, *, days: int = HISTORY_DAYS) -> None:
    """Everything ``dosewatch run`` starts, plus the demo's patients and the fleet."""
    import typer
    from fastapi.testclient import TestClient

    from dashboards.app import create_app
    from dispenser_sim.fleet import Fleet as NearDoses
    from dispenser_sim.profiles import load_fleet
    from dosewatch.clock import SystemClock
    from dosewatch.db import users as user_sql
    from service.demo_fleet import DemoFleet
    from service.runtime import runtime, serve_web, start_alarm_jobs, start_gateway

    def say(line: str) -> None:
        typer.echo(line)
        sys.stdout.flush()

    fleet = load_fleet(FLEET)
    with runtime(settings, need_mqtt=True, embedded_database=DEMO_DATABASE) as rt:
        assert rt.mqtt is not None
        with rt.pool.connection() as conn, conn.transaction():
            refuse_unfit(conn)
            now = rt.clock.now()
            near = set_up(conn, now, settings.timezone, rt.horizon)
            accounts = sign_in(conn, now)
            _, fleet_token = user_sql.create_token(
                conn, name="demo fleet staff", role="admin", team_id=None, now=now
            )
        gw = start_gateway(rt)
        doses = NearDoses(rt.mqtt, near)
        doses.start()
        app = create_app(rt.pool, SystemClock(), default_timezone=settings.timezone)
        history = DemoFleet(
            rt.pool,
            fleet,
            days,
            mqtt=None if rt.embedded_broker else rt.mqtt,
            publisher=gw.source.client,
            api=lambda: TestClient(app, headers={"Authorization": f"Bearer {fleet_token}"}),
            start_jobs=lambda: start_alarm_jobs(rt),
            say=say,
        )
        base = f"http://{settings.http_host}:{settings.http_port}"
        due = near[0].due_times[0]
        say(
            f"\n  dosewatch demo: the {fleet.name} fleet ({len(fleet.dispensers)} dispensers)"
            f" with {days} days of history, then live; and 3 patients whose dose is due"
            f" {due:%H:%M:%S} UTC (window {WINDOW_MIN} min).\n"
            f"  DEMO-003's patient will not take it: a missed-dose alarm opens soon after.\n"
            f"  Reports:     {base}/reports (sign in as demo-manager)\n"
            f"  Alarms:      {base}/api/v1/alarms\n"
            f"  API docs:    {base}/docs\n"
            f"  Database:    {rt.database_url}\n  Broker:      {rt.mqtt.redacted()}\n"
            f"  Stop with Ctrl-C.\n"
        )
        # Column 0, so a script can pick out the line starting "API token:".
        say(f"Sign in at {base}/login\n" + "".join(f"{line}\n" for line in accounts))
        history.start()
        watch = _AlarmWatch(rt.pool, "DEMO-003", now, say)
        watch.start()
        try:
            serve_web(rt)
        finally:
            watch.stop.set()
            history.close()
            if history.jobs is not None:
                history.jobs.shutdown(wait=False)
            doses.stop()
            gw.stop()


class _AlarmWatch(threading.Thread):
    """Says when the missed-dose alarm the demo promises has opened (whichever sweep opened
    it: the history's catching up with the wall clock, or the live one)."""

    def __init__(
        self, pool: ConnectionPool, dispenser_id: str, began: datetime, say: Callable[[str], None]
    ) -> None:
        super().__init__(name="demo-alarm-watch", daemon=True)
        self.pool, self.dispenser_id, self.began, self.say = pool, dispenser_id, began, say
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(2.0):
            try:
                with self.pool.connection() as conn:
                    rows = scope_sql.list_alarms(conn, team_id=None, state=None, limit=50)
            except psycopg.OperationalError:
                continue  # the database is going away (Ctrl-C) or busy: look again
            for a in rows:
                if a["dispenser_id"] == self.dispenser_id and a["kind"] == "missed_dose":
                    after = (a["opened_at"] - self.began).total_seconds()
                    self.say(
                        f"Missed-dose alarm {a['id']} opened for {self.dispenser_id} at"
                        f" {a['opened_at']:%H:%M:%S} UTC, {after:.0f} s after the demo started."
                    )
                    return
