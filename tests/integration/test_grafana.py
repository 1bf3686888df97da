"""The Grafana dashboards cannot rot: every panel's SQL (and every variable's) runs against the
migrated database as the role Grafana signs in with, over a believable month, and the figures
they show are the report API's for the same month and team.

Grafana's macros are expanded here the way its PostgreSQL data source expands them, for the
macros the dashboards use; a macro or variable this test does not know fails the test, so a
dashboard cannot start depending on something nobody checked.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import yaml
from psycopg_pool import ConnectionPool

from dosewatch import reports, reports_ops
from dosewatch.clock import FakeClock
from dosewatch.domain.report_period import month_period
from tests.reports_month import TZ, Seeded, seed

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
ROLE = "dosewatch_grafana"
OCTOBER = month_period(2026, 10)
ALL_TEAMS = "-1"  # the team variable's allValue


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return out


def _range(period: Any) -> tuple[datetime, datetime]:
    """Grafana's time range for whole local days, in the dashboards' time zone."""
    tz = ZoneInfo(TZ)
    start = datetime.combine(period.start, time(), tz)
    end = datetime.combine(period.end + timedelta(days=1), time(), tz) - timedelta(milliseconds=1)
    return start, end


def expand(sql: str, start: datetime, end: datetime, team: str) -> str:
    """What Grafana sends for ``sql`` over [start, end] with the team variable at ``team``."""
    since, until = (t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                    for t in (start, end))  # fmt: skip
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN '{since}' AND '{until}'", sql)
    sql = sql.replace("$__timeFrom()", f"'{since}'").replace("$__timeTo()", f"'{until}'")
    sql = sql.replace("${tz}", TZ).replace("$team", team).replace("${team}", team)
    leftover = re.findall(r"\$\{?\w+", sql)
    assert not leftover, f"a macro or variable this test does not expand: {leftover}"
    return sql


def run_as_grafana(pool: ConnectionPool, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with pool.connection() as conn, conn.transaction():
        conn.execute(f"SET LOCAL ROLE {ROLE}")
        with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
            cur.execute(sql.encode())
            names = [c.name for c in cur.description or []]
            return names, cur.fetchall()


def _by_title(title: str) -> str:
    for path in DASHBOARDS:
        for panel in _panels(json.loads(path.read_text("utf-8"))):
            if panel["title"] == title:
                return str(panel["targets"][0]["rawSql"])
    raise AssertionError(f"no panel {title!r}")


def _value(pool: ConnectionPool, title: str, team: str = ALL_TEAMS) -> Any:
    _, rows = run_as_grafana(pool, expand(_by_title(title), *_range(OCTOBER), team))
    assert len(rows) == 1 and len(rows[0]) == 1, title
    return rows[0][0]


@pytest.fixture
def month(pool: ConnectionPool, clock: FakeClock) -> Seeded:
    return seed(pool, clock.now())


def test_the_provisioning_points_every_panel_at_the_provisioned_data_source() -> None:
    source = yaml.safe_load((GRAFANA / "provisioning/datasources/dosewatch.yaml").read_text())
    (ds,) = source["datasources"]
    assert ds["type"] == "grafana-postgresql-datasource" and ds["editable"] is False
    assert ds["secureJsonData"]["password"] == "${GRAFANA_DB_PASSWORD}"  # never in git
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/dosewatch.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/dosewatch"
    compose = yaml.safe_load((GRAFANA.parent / "compose.yaml").read_text())["services"]
    mounts = compose["grafana"]["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards/dosewatch:ro" in mounts
    assert len(DASHBOARDS) >= 2
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text("utf-8"))
        uids.add(dashboard["uid"])
        for panel in _panels(dashboard):
            for target in [panel, *panel["targets"]]:
                assert target["datasource"]["uid"] == ds["uid"], (path.name, panel["title"])
    assert len(uids) == len(DASHBOARDS)


def test_every_panel_and_variable_runs_as_grafana_and_shows_data(
    pool: ConnectionPool, month: Seeded
) -> None:
    start, end = _range(OCTOBER)
    ran = 0
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text("utf-8"))
        for var in dashboard["templating"]["list"]:
            if var["type"] == "query":
                _, rows = run_as_grafana(pool, expand(var["query"], start, end, ALL_TEAMS))
                assert len(rows) == len(month.teams)
        for panel in _panels(dashboard):
            for target in panel["targets"]:
                for team in (ALL_TEAMS, str(month.teams["Hemtjänst Norr"])):
                    names, rows = run_as_grafana(pool, expand(target["rawSql"], start, end, team))
                    where = f"{path.name}: {panel['title']!r}"
                    assert rows, f"{where} shows nothing for a month full of data"
                    assert all(v is not None for v in rows[0][1:] or rows[0]), where
                    if target["format"] == "time_series":
                        assert names[0] == "time", f"{where}: a time series needs a time column"
                    ran += 1
    assert ran >= 2 * 20


def test_the_dashboards_show_the_report_api_figures(
    pool: ConnectionPool, clock: FakeClock, month: Seeded
) -> None:
    now = clock.now()
    with pool.connection() as conn:
        api = reports.municipality(conn, OCTOBER, 95.0, now)
        alarms = reports_ops.alarms_report(conn, OCTOBER, None, now, TZ)
        north_id = month.teams["Hemtjänst Norr"]
        north = reports.team(conn, north_id, "Hemtjänst Norr", OCTOBER, 95.0, now)
        north_alarms = reports_ops.alarms_report(conn, OCTOBER, north_id, now, TZ)
    f = api["figures"]
    assert float(_value(pool, "Taking adherence")) == f["taking_adherence_pct"]
    assert float(_value(pool, "Timing adherence")) == f["timing_adherence_pct"]
    assert float(_value(pool, "Correct-dosing days")) == f["correct_dosing_days_pct"]
    assert _value(pool, "Expected doses") == f["expected"]
    assert _value(pool, "Missed doses") == f["missed"]
    assert _value(pool, "Status unknown (device)") == f["unknown"] > 0
    assert _value(pool, "Patients monitored") == f["patients"]
    assert _value(pool, "Patients under 95 %") == len(api["under_threshold"]) > 0
    team = str(north_id)
    assert float(_value(pool, "Taking adherence", team)) == north["figures"]["taking_adherence_pct"]

    ack, resolve = alarms["time_to_acknowledge"], alarms["time_to_resolve"]
    assert _value(pool, "Alarms") == alarms["alarms"] > 0
    per_100 = alarms["alarms_per_100_patient_days"]
    assert float(_value(pool, "Alarms per 100 patient-days")) == per_100
    assert _value(pool, "Acknowledged, median") == ack["median_s"]
    assert _value(pool, "Acknowledged, p90") == ack["p90_s"]
    assert _value(pool, "Resolved, median") == resolve["median_s"]
    late_acks = alarms["not_acknowledged_within_15_min"]
    assert _value(pool, "Not acknowledged within 15 min") == late_acks
    assert _value(pool, "Reached the last step") == alarms["reached_last_step"] > 0
    failures = sum(x["count"] for x in alarms["delivery_failures"])
    assert _value(pool, "SMS/call failures") == failures > 0
    assert _value(pool, "Alarms", team) == north_alarms["alarms"]

    # The per-team table: each team's row is that team's figures in the API.
    names, rows = run_as_grafana(pool, expand(_by_title("Teams"), *_range(OCTOBER), ALL_TEAMS))
    table = {r[0]: dict(zip(names, r, strict=True)) for r in rows}
    for t in api["teams"]:
        assert float(table[t["name"]]["Taking %"]) == t["figures"]["taking_adherence_pct"]
        assert table[t["name"]]["Missed"] == t["figures"]["missed"]


def test_grafana_reads_figures_not_people(pool: ConnectionPool, month: Seeded) -> None:
    for table in ("patients", "dose_slots", "audit_log", "users"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            run_as_grafana(pool, f"SELECT * FROM {table} LIMIT 1")
    with pool.connection() as conn:
        columns = {r["column_name"] for r in conn.execute(  # type: ignore[call-overload]
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'reporting'"
        ).fetchall()}  # fmt: skip
    assert columns and not columns & {"name", "phone", "address", "note", "to_number"}
    assert date(2026, 10, 25) in {r[0] for r in run_as_grafana(  # the DST day is a local day too
        pool, "SELECT DISTINCT local_date FROM reporting.adherence_team_daily")[1]}  # fmt: skip
