"""``dosewatch demo``: a small fleet whose first doses fall due within a minute or two.

Three patients: one takes the dose on time, one a little late but inside the window, and one
never takes it — so a missed-dose alarm opens within about three minutes of starting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dispenser_sim.fleet import VirtualDispenser
from dosewatch.db import DbConn, registry
from dosewatch.db import schedules as schedule_sql
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
DEMO_TEAM = "Demo team"


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
