"""Adherence reports over the rollup: one scan, every grouping a page needs.

``adherence_daily`` holds counts per dispenser and local day. A report first sums a patient's
dispensers into one *patient-day* (a correct day needs every dose of both), then patient-days
into patient-weeks, then those by ``GROUPING SETS`` (the whole scope, each team, each team's
district, each ISO week, each patient) in one statement. The SQL only adds; which patient-day
is *monitored* and which is *correct* mirrors :class:`dosewatch.domain.adherence.DayCounts`
(``tests/integration/test_reports_sql.py`` holds it to the domain's ``figures``), and every
percentage is computed by the domain from the sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db.rollups import COLUMNS
from dosewatch.domain.adherence import DayCounts, Figures

_SUMS = ", ".join(f"sum(a.{c})::int AS {c}" for c in COLUMNS)
_OUTER = ", ".join(f"coalesce(sum({c}), 0)::int AS {c}" for c in COLUMNS)
# DayCounts.monitored and DayCounts.correct, for one patient-day.
_EXPECTED = "(taken + taken_late + missed + unknown)"
MONITORED_SQL = f"({_EXPECTED} > 0 AND pending = 0)"
CORRECT_SQL = f"({MONITORED_SQL} AND missed + unknown = 0)"

# Training mode: a training team's patients (``p``) are in no report, at any scope.
REAL_PATIENT = "NOT EXISTS (SELECT 1 FROM teams tt WHERE tt.id = p.team_id AND tt.training)"
TRAINING_PATIENT_IDS = (
    "SELECT p.id FROM patients p JOIN teams tt ON tt.id = p.team_id WHERE tt.training"
)

# The scope on patients (``p``) alone, and with the rollup (``a``) too.
_P = (
    f" AND {REAL_PATIENT}"
    " AND (%(team)s::bigint IS NULL OR p.team_id = %(team)s)"
    " AND (NOT %(by_district)s OR p.district IS NOT DISTINCT FROM %(district)s)"
    " AND (%(patient)s::bigint IS NULL OR p.id = %(patient)s)"
)
_SCOPE = (
    f" AND {REAL_PATIENT}"
    " AND (%(team)s::bigint IS NULL OR p.team_id = %(team)s)"
    " AND (NOT %(by_district)s OR p.district IS NOT DISTINCT FROM %(district)s)"
    " AND (%(patient)s::bigint IS NULL OR a.patient_id = %(patient)s)"
)

_SUMS2 = ", ".join(f"sum({c})::int AS {c}" for c in COLUMNS)
# Patient-days → patient-weeks (each week's monitored and correct days) → every grouping. Each
# patient-week row is one patient, so a patient is counted once per scope by flagging the
# first week of each: no DISTINCT aggregate, so the grouping sets are hashed in one pass.
_GROUPED = f"""
WITH pd AS (
    SELECT a.patient_id, a.local_date, {_SUMS}
    FROM adherence_daily a {{scope}}
    GROUP BY a.patient_id, a.local_date
), pw AS (
    SELECT patient_id, date_trunc('week', local_date)::date AS week, {_SUMS2},
           count(*) FILTER (WHERE {MONITORED_SQL})::int AS monitored_days,
           count(*) FILTER (WHERE {CORRECT_SQL})::int AS correct_days
    FROM pd GROUP BY patient_id, week
), x AS (
    SELECT pw.*, p.team_id, p.district,
           row_number() OVER (PARTITION BY pw.patient_id ORDER BY pw.week) = 1 AS first_week
    FROM pw JOIN patients p ON p.id = pw.patient_id
)
SELECT GROUPING(team_id) AS g_team, GROUPING(district) AS g_district,
       GROUPING(week) AS g_week, GROUPING(patient_id) AS g_patient,
       team_id, district, week, patient_id, {_OUTER},
       coalesce(sum(monitored_days), 0)::int AS monitored_days,
       coalesce(sum(correct_days), 0)::int AS correct_days,
       (CASE WHEN GROUPING(week) = 0 THEN count(*)
             ELSE count(*) FILTER (WHERE first_week) END)::int AS patients
FROM x
GROUP BY GROUPING SETS ((), (team_id), (team_id, district), (week), (patient_id))
"""


@dataclass(frozen=True)
class Scope:
    """Which patients: all (None), a team, a team's district, or one patient."""

    team_id: int | None = None
    district: str | None = None
    by_district: bool = False
    patient_id: int | None = None

    def params(self) -> dict[str, Any]:
        return {
            "team": self.team_id,
            "district": self.district,
            "by_district": self.by_district,
            "patient": self.patient_id,
        }


@dataclass
class Grouped:
    """The figures of one report, by grouping."""

    total: Figures
    teams: dict[int | None, Figures]
    districts: dict[tuple[int | None, str | None], Figures]
    weeks: dict[date, Figures]
    patients: dict[int, Figures]


def to_figures(row: dict[str, Any]) -> Figures:
    counts = DayCounts(**{c: int(row[c] or 0) for c in COLUMNS})
    return Figures(
        counts, int(row["correct_days"]), int(row["monitored_days"]), int(row["patients"])
    )


def grouped(conn: DbConn, start: date, end: date, scope: Scope) -> Grouped:
    """Every grouping of the period's patient-days within ``scope``, from one scan."""
    params = {"start": start, "end": end, **scope.params()}
    out = Grouped(
        total=Figures(DayCounts(), 0, 0, 0), teams={}, districts={}, weeks={}, patients={}
    )
    # The whole municipality needs no patient filter on its largest scan, only the (few)
    # training patients left out.
    where = "WHERE a.local_date BETWEEN %(start)s AND %(end)s"
    if scope.patient_id is not None:
        where += f" AND a.patient_id = %(patient)s AND a.patient_id NOT IN ({TRAINING_PATIENT_IDS})"
    elif scope == Scope():
        where += f" AND a.patient_id NOT IN ({TRAINING_PATIENT_IDS})"
    else:
        where += f" AND a.patient_id IN (SELECT p.id FROM patients p WHERE true{_P})"
    for row in conn.execute(_GROUPED.format(scope=where), params).fetchall():
        figs = to_figures(row)
        if row["g_team"] and row["g_week"] and row["g_patient"]:
            out.total = figs
        elif not row["g_district"]:
            out.districts[(row["team_id"], row["district"])] = figs
        elif not row["g_team"]:
            out.teams[row["team_id"]] = figs
        elif not row["g_week"]:
            out.weeks[row["week"]] = figs
        else:
            out.patients[row["patient_id"]] = figs
    return out


def daily(conn: DbConn, patient_id: int, start: date, end: date) -> dict[date, DayCounts]:
    """A patient's counts per local day (dispensers summed)."""
    rows = conn.execute(
        f"SELECT a.local_date, {_SUMS} FROM adherence_daily a"
        " WHERE a.patient_id = %s AND a.local_date BETWEEN %s AND %s"
        f" AND a.patient_id NOT IN ({TRAINING_PATIENT_IDS}) GROUP BY a.local_date",
        (patient_id, start, end),
    ).fetchall()
    return {r["local_date"]: DayCounts(**{c: int(r[c]) for c in COLUMNS}) for r in rows}


def window_sums(
    conn: DbConn, start: date, end: date, scope: Scope
) -> dict[int, tuple[DayCounts, int]]:
    """Per patient: counts over the period and dispenser-days (economics, insights)."""
    rows = conn.execute(
        f"SELECT a.patient_id, {_SUMS}, count(*)::int AS dispenser_days"
        " FROM adherence_daily a JOIN patients p ON p.id = a.patient_id"
        f" WHERE a.local_date BETWEEN %(start)s AND %(end)s {_SCOPE} GROUP BY a.patient_id",
        {"start": start, "end": end, **scope.params()},
    ).fetchall()
    return {
        r["patient_id"]: (DayCounts(**{c: int(r[c]) for c in COLUMNS}), int(r["dispenser_days"]))
        for r in rows
    }


@dataclass(frozen=True)
class PatientInfo:
    patient_id: int
    name: str
    team_id: int | None
    team_name: str | None
    district: str | None
    timezone: str | None
    dispensers: list[str]


def patients(conn: DbConn, scope: Scope, ids: list[int] | None = None) -> dict[int, PatientInfo]:
    """The patients in scope (or only ``ids`` of them): name, team, district, dispensers, and
    the time zone of their newest schedule."""
    rows = conn.execute(
        "SELECT p.id, p.name, p.team_id, t.name AS team_name, p.district,"
        " coalesce(array_agg(d.id ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '{}')"
        "   AS dispensers,"
        " (array_agg(sc.timezone ORDER BY sc.effective_from DESC, sc.version DESC)"
        "   FILTER (WHERE sc.timezone IS NOT NULL))[1] AS timezone"
        " FROM patients p LEFT JOIN teams t ON t.id = p.team_id"
        " LEFT JOIN dispensers d ON d.patient_id = p.id"
        " LEFT JOIN LATERAL (SELECT s.timezone, s.effective_from, s.version FROM schedules s"
        "   WHERE s.dispenser_id = d.id ORDER BY s.effective_from DESC, s.version DESC"
        "   LIMIT 1) sc ON true"
        f" WHERE true{_P}"
        " AND (%(ids)s::bigint[] IS NULL OR p.id = ANY(%(ids)s))"
        " GROUP BY p.id, t.name ORDER BY p.name, p.id",
        {**scope.params(), "ids": ids},
    ).fetchall()
    return {
        r["id"]: PatientInfo(
            r["id"],
            r["name"],
            r["team_id"],
            r["team_name"],
            r["district"],
            r["timezone"],
            list(r["dispensers"]),
        )
        for r in rows
    }


def teams(conn: DbConn) -> dict[int, str]:
    """The teams reports are about: every team but the training teams."""
    rows = conn.execute("SELECT id, name FROM teams WHERE NOT training ORDER BY name")
    return {r["id"]: r["name"] for r in rows}
