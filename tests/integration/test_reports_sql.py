"""The report SQL only adds: its grouped sums, monitored and correct days equal
:func:`dosewatch.domain.adherence.figures` over the same rollup rows, for every grouping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool

from dosewatch.db.reports import Scope, grouped
from dosewatch.db.rollups import COLUMNS
from dosewatch.domain.adherence import DayCounts, figures
from dosewatch.domain.report_period import week_start

NOW = datetime(2026, 11, 30, tzinfo=UTC)
START = date(2026, 11, 1)
# (dispenser, patient, team, district): patient 2 has two dispensers.
DISPENSERS = [
    ("DSP-1", 1, 1, "Haga"),
    ("DSP-2", 2, 1, None),
    ("DSP-3", 2, 1, None),
    ("DSP-4", 3, 2, "Ön"),
]
_small = st.integers(0, 3)
_row = st.tuples(
    st.sampled_from(range(4)),
    st.integers(0, 20),
    st.builds(DayCounts, _small, _small, _small, _small, _small, _small),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_row, max_size=40, unique_by=lambda r: (r[0], r[1])))
def test_grouped_sql_equals_the_domain_figures(
    pool: ConnectionPool, rows: list[tuple[int, int, DayCounts]]
) -> None:
    with pool.connection() as conn, conn.transaction():
        conn.execute(
            "TRUNCATE adherence_daily, dispensers, patients, teams RESTART IDENTITY CASCADE"
        )
        conn.execute(
            "INSERT INTO teams (id, name, created_at) VALUES (1, 'A', %s), (2, 'B', %s)", (NOW, NOW)
        )
        for pid, team, district in {(p, t, d) for _, p, t, d in DISPENSERS}:
            conn.execute(
                "INSERT INTO patients (id, name, phone, team_id, district)"
                " VALUES (%s, 'P', '+4690', %s, %s)",
                (pid, team, district),
            )
        for d, pid, _, _ in DISPENSERS:
            conn.execute("INSERT INTO dispensers (id, patient_id) VALUES (%s, %s)", (d, pid))
        for i, day, c in rows:
            if not sum(getattr(c, k) for k in COLUMNS):
                continue  # the rollup stores no day without a slot (rollups._REFRESH)
            d, pid, _, _ = DISPENSERS[i]
            conn.execute(
                f"INSERT INTO adherence_daily (dispenser_id, local_date, patient_id,"
                f" {', '.join(COLUMNS)}, refreshed_at) VALUES (%s, %s, %s,"
                f" {', '.join(['%s'] * len(COLUMNS))}, %s)",
                (d, START + timedelta(days=day), pid, *(getattr(c, k) for k in COLUMNS), NOW),
            )
        g = grouped(conn, START, date(2026, 11, 30), Scope())
        team_one = grouped(conn, START, date(2026, 11, 30), Scope(team_id=1))
        haga = grouped(conn, START, date(2026, 11, 30), Scope(1, "Haga", by_district=True))
        second = grouped(conn, START, date(2026, 11, 30), Scope(patient_id=2))
    # Days with no slot at all are never rows of the rollup.
    days = [
        (DISPENSERS[i], START + timedelta(days=day), c)
        for i, day, c in rows
        if sum(getattr(c, k) for k in COLUMNS)
    ]

    def of(keep: object) -> object:
        return figures((disp[1], day, c) for disp, day, c in days if keep(disp, day))  # type: ignore[operator]

    assert g.total == of(lambda _d, _day: True)
    for team in (1, 2):
        if team in g.teams:
            assert g.teams[team] == of(lambda d, _day, t=team: d[2] == t)
    for monday, figs in g.weeks.items():
        assert figs == of(lambda _d, day, m=monday: week_start(day) == m)
    for pid, figs in g.patients.items():
        assert figs == of(lambda d, _day, p=pid: d[1] == p)
    assert set(g.patients) == {disp[1] for disp, _, _ in days}
    assert team_one.total == of(lambda d, _day: d[2] == 1)
    assert haga.total == of(lambda d, _day: d[3] == "Haga")
    assert second.total == of(lambda d, _day: d[1] == 2)
