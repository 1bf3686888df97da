"""The monthly PDF, read back with pypdf: the figures it prints are the JSON API's, its charts are
there (their labels are text in the page), each language reads as itself, the municipality's
report names no patient, a team's report names its own and no other, and access and audit
follow the JSON reports' rules."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from pypdf import PdfReader

from dashboards import reports_pdf
from dashboards.app import create_app
from dosewatch.clock import FakeClock
from tests.auth_helpers import bearer
from tests.reports_month import NAMES, Seeded, seed


@pytest.fixture
def month(pool: ConnectionPool, clock: FakeClock) -> Seeded:
    return seed(pool, clock.now())


@pytest.fixture
def client(pool: ConnectionPool, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(pool, clock)) as c:
        yield c


def _pdf(response: object) -> PdfReader:
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/pdf"  # type: ignore[attr-defined]
    assert "attachment" in response.headers["content-disposition"]  # type: ignore[attr-defined]
    return PdfReader(io.BytesIO(response.content))  # type: ignore[attr-defined]


def _text(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def _sv_pct(value: float) -> str:
    return f"{value:.1f}".replace(".", ",") + " %"


def test_municipality_pdf_prints_the_api_figures_and_its_charts(
    client: TestClient, pool: ConnectionPool, month: Seeded
) -> None:
    manager = bearer(pool, "manager")
    api = client.get("/api/v1/reports/municipality?month=2026-10", headers=manager).json()
    alarms = client.get("/api/v1/reports/alarms?month=2026-10", headers=manager).json()
    reader = _pdf(
        client.get("/api/v1/reports/municipality.pdf?month=2026-10&lang=sv", headers=manager)
    )

    assert len(reader.pages) >= 2
    assert reader.metadata is not None and reader.metadata.title is not None
    assert "Kommunen" in reader.metadata.title and "oktober 2026" in reader.metadata.title
    first = reader.pages[0].extract_text()
    figures = api["figures"]
    # The headline figures on the first page are the API's, in Swedish notation.
    assert _sv_pct(figures["taking_adherence_pct"]) in first
    assert _sv_pct(figures["timing_adherence_pct"]) in first
    assert _sv_pct(figures["correct_dosing_days_pct"]) in first
    assert f"{figures['missed'] + figures['unknown']}" in first
    assert "Följsamhet (tagna doser)" in first and "Månadsrapport" in first
    # The charts: the weekly trend's week labels and the team bars' names are drawn as text.
    for week in api["weekly"]:
        assert f"v. {week['week'][-2:]}" in first
    for team in month.teams:
        assert team in first
    assert f"{alarms['alarms']}" in first
    # Every team's row is in the tables, with its own figures.
    text = _text(reader)
    for team in api["teams"]:
        assert _sv_pct(team["figures"]["taking_adherence_pct"]) in text
    # The municipality's report names no patient, even those under the threshold.
    assert api["under_threshold"], "the fixture month has patients under 95 %"
    assert not [name for name in NAMES if name in text]


def test_team_pdf_in_english_names_its_patients_only(
    client: TestClient, pool: ConnectionPool, month: Seeded
) -> None:
    north = month.teams["Hemtjänst Norr"]
    nurse = bearer(pool, "nurse", north)
    api = client.get(f"/api/v1/reports/teams/{north}?month=2026-10", headers=nurse).json()
    reader = _pdf(
        client.get(f"/api/v1/reports/teams/{north}.pdf?month=2026-10&lang=en", headers=nurse)
    )
    text = _text(reader)
    assert "Monthly report" in text and "October 2026" in text and "Hemtjänst Norr" in text
    assert f"{api['figures']['taking_adherence_pct']:.1f} %" in reader.pages[0].extract_text()
    own = {n for n, team in month.team_of.items() if team == "Hemtjänst Norr"}
    assert own and all(name in text for name in own)
    assert not [n for n in NAMES if n not in own and n in text]
    # Economics are for managers and admins; a nurse's report has none.
    assert "Net saving per month" not in text
    manager_text = _text(
        _pdf(
            client.get(
                f"/api/v1/reports/teams/{north}.pdf?month=2026-10&lang=en",
                headers=bearer(pool, "manager"),
            )
        )
    )
    assert "Net saving per month" in manager_text

    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT object_type, object_id, detail FROM audit_log WHERE action = 'export'"
            " ORDER BY id"
        ).fetchall()
    assert rows[0]["object_type"] == "team" and rows[0]["object_id"] == str(north)  # type: ignore[call-overload]
    assert sorted(rows[0]["detail"]["patients"]) == sorted(month.patients[n] for n in own)  # type: ignore[call-overload]


def test_pdf_access_follows_the_report_rules(
    client: TestClient, pool: ConnectionPool, month: Seeded
) -> None:
    north, south = month.teams["Hemtjänst Norr"], month.teams["Hemtjänst Söder"]
    nurse = bearer(pool, "nurse", north)
    assert (
        client.get("/api/v1/reports/municipality.pdf?month=2026-10", headers=nurse).status_code
        == 403
    )
    assert (
        client.get(f"/api/v1/reports/teams/{south}.pdf?month=2026-10", headers=nurse).status_code
        == 404
    )
    assert (
        client.get("/api/v1/reports/teams/999.pdf", headers=bearer(pool, "admin")).status_code
        == 404
    )
    pharmacist = bearer(pool, "pharmacist", north)
    assert client.get(f"/api/v1/reports/teams/{north}.pdf", headers=pharmacist).status_code == 403
    bad = client.get(
        "/api/v1/reports/municipality.pdf?month=2026-13", headers=bearer(pool, "manager")
    )
    assert bad.status_code == 422 and "month" in bad.json()["detail"][0]["msg"]
    assert client.get("/api/v1/reports/municipality.pdf").status_code == 401
    with pool.connection() as conn:
        denied = conn.execute(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'denied' AND object_type = 'team'"
        ).fetchone()
    assert denied is not None and denied["n"] == 1  # type: ignore[call-overload]


def test_without_a_month_the_pdf_is_the_last_whole_month(
    client: TestClient, pool: ConnectionPool, month: Seeded
) -> None:
    # The test clock stands in November 2026: the last whole month is October.
    response = client.get("/api/v1/reports/municipality.pdf", headers=bearer(pool, "admin"))
    assert (
        'filename="dosewatch-municipality-2026-10.pdf"' in response.headers["content-disposition"]
    )
    assert "October 2026" in _text(_pdf(response)) or "oktober 2026" in _text(_pdf(response))


def test_a_quiet_month_or_a_single_week_still_makes_a_pdf(
    client: TestClient, pool: ConnectionPool, clock: FakeClock, month: Seeded
) -> None:
    # September 2026 has no slots at all; a new team has no patients.
    admin = bearer(pool, "admin")
    quiet = _text(_pdf(client.get("/api/v1/reports/municipality.pdf?month=2026-09&lang=en",
                                  headers=admin)))  # fmt: skip
    assert "No dose was expected in this month." in quiet
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO teams (name, created_at) VALUES ('Nytt team', now()) RETURNING id"
        ).fetchone()
    assert row is not None
    empty = _pdf(client.get(f"/api/v1/reports/teams/{row['id']}.pdf?month=2026-10&lang=sv",  # type: ignore[call-overload]
                            headers=admin))  # fmt: skip
    assert "Inga förväntade doser under månaden." in _text(empty)
    # One week with doses: the weekly counts, and a sentence instead of a one-point line.
    report = client.get("/api/v1/reports/municipality?month=2026-10", headers=admin).json()
    for week in report["weekly"][1:]:
        week["figures"] = {**week["figures"], "taking_adherence_pct": None,
                           "timing_adherence_pct": None}  # fmt: skip
    alarms = client.get("/api/v1/reports/alarms?month=2026-10", headers=admin).json()
    insights = client.get("/api/v1/reports/insights?as_of=2026-10-31", headers=admin).json()
    content = reports_pdf.render(reports_pdf.MonthlyReport(
        scope="municipality", month=date(2026, 10, 1), report=report, alarms=alarms,
        economics=None, insights=insights, generated_at=clock.now(), generated_by="test",
        timezone="Europe/Stockholm", language="en",
    ))  # fmt: skip
    assert "Too few weeks with doses for a trend." in _text(PdfReader(io.BytesIO(content)))
