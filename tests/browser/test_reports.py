"""The managers' report pages in a real browser, in Swedish and English: the overview shows the
API's figures and charts, a click goes municipality → team → patient → dose calendar, every
opening of a patient's figures is audited, a nurse reads only her own team, nothing is loaded
from another host, and the monthly PDF downloads from the page.

Screenshots of the overview, a team, a patient, the calendar and the PDF's first page (rendered
by poppler's ``pdftoppm``) are saved under test-output/screenshots/ for both languages.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool
from pypdf import PdfReader

from dosewatch.clock import FakeClock
from tests.browser.conftest import SCREENSHOTS, add_user, sign_in
from tests.reports_month import Seeded, seed

MONTH = "2026-10"  # a whole month before the test clock's November day, with a DST change
PDFTOPPM = shutil.which("pdftoppm")


@pytest.fixture
def month(pool: ConnectionPool, clock: FakeClock) -> Seeded:
    return seed(pool, clock.now())


def _shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _pct(value: float, lang: str) -> str:
    """As the page writes it (Intl.NumberFormat, one decimal)."""
    text = f"{value:.1f}"
    return (text.replace(".", ",") if lang == "sv" else text) + " %"


def _charts_drawn(page: Any) -> int:
    """Canvases Chart.js has drawn on (a chart instance is attached to each)."""
    return int(page.evaluate("() => [...document.querySelectorAll('canvas')]"
                             ".filter((c) => Chart.getChart(c)).length"))  # fmt: skip


def _downloads_answer(page: Any, web: str) -> int:
    """Every download link of the page (CSV, PDF) answers 200 with its file type."""
    hrefs = page.eval_on_selector_all(".downloads a", "(links) => links.map((a) => a.href)")
    for href in hrefs:
        response = page.request.get(href)
        assert response.status == 200, (href, response.text())
        kind = response.headers["content-type"]
        assert kind.startswith("text/csv") or kind == "application/pdf", (href, kind)
        if kind.startswith("text/csv"):
            assert response.body().startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
    return len(hrefs)


def _pdf_first_page(pdf: Path, name: str) -> Path:
    assert PDFTOPPM, "pdftoppm is needed (apt-get install poppler-utils; .ci/run installs it)"
    out = SCREENSHOTS / name
    subprocess.run([PDFTOPPM, "-png", "-r", "110", "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(out)], check=True, timeout=60)  # fmt: skip
    return out.with_suffix(".png")


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_manager_drills_down_from_municipality_to_dose_calendar(
    pool: ConnectionPool, clock: FakeClock, web: str, new_page: Any, month: Seeded, lang: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    add_user(pool, f"chef-{lang}", "manager", None, lang, clock.now(), name="Maria Chef")
    page = new_page("sv-SE" if lang == "sv" else "en-GB")
    foreign: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(web) else foreign.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, web, f"chef-{lang}", f"/reports?month={MONTH}")

    # The overview: the API's headline figures, the charts drawn, every team listed.
    page.wait_for_selector(".kpis")
    api = page.request.get(f"{web}/api/v1/reports/municipality?month={MONTH}").json()
    kpis = page.inner_text(".kpis")
    assert _pct(api["figures"]["taking_adherence_pct"], lang) in kpis
    assert _pct(api["figures"]["timing_adherence_pct"], lang) in kpis
    assert _pct(api["figures"]["correct_dosing_days_pct"], lang) in kpis
    for team in month.teams:
        assert page.locator("table.figures a", has_text=team).count() == 1
    page.wait_for_function("() => [...document.querySelectorAll('canvas')].length >= 3")
    assert _charts_drawn(page) >= 3  # trend, teams, alarms by shift
    title = "Översikt för kommunen" if lang == "sv" else "Municipality overview"
    assert page.inner_text("h1") == title
    _shot(page, f"reports-overview-{lang}")
    assert _downloads_answer(page, web) >= 1

    # The monthly PDF from the page's own link, read back and its first page rendered.
    with page.expect_download() as download:
        page.click(".downloads a[href*='municipality.pdf']")
    pdf = tmp_path / "municipality.pdf"
    download.value.save_as(pdf)
    reader = PdfReader(pdf)
    assert (_pct(api["figures"]["taking_adherence_pct"], lang)
            in reader.pages[0].extract_text())  # fmt: skip
    assert _pdf_first_page(pdf, f"reports-pdf-{lang}").stat().st_size > 20_000

    # → a team
    page.click("table.figures a:text('Hemtjänst Norr')")
    page.wait_for_url(f"**/reports/teams/{month.teams['Hemtjänst Norr']}?month={MONTH}")
    page.wait_for_selector("table.figures a[href^='/reports/patients/']")
    assert page.inner_text("h1") == "Hemtjänst Norr"
    page.wait_for_function("() => [...document.querySelectorAll('canvas')].length >= 2")
    assert _charts_drawn(page) >= 2
    _shot(page, f"reports-team-{lang}")
    assert _downloads_answer(page, web) >= 1

    # → a patient (the team's lowest first in the bar chart; the table link here)
    patient = "Judit Näslund"
    page.click(f"table.figures a:text('{patient}')")
    page.wait_for_url(f"**/reports/patients/{month.patients[patient]}?month={MONTH}")
    page.wait_for_selector(".kpis")
    assert page.inner_text("h1") == patient
    page.wait_for_function("() => [...document.querySelectorAll('canvas')].length >= 2")
    assert _charts_drawn(page) >= 2  # day by day, weekly trend
    _shot(page, f"reports-patient-{lang}")
    assert _downloads_answer(page, web) >= 1

    # → the dose calendar: every day of October, a column per dose time
    page.click("a.button-link.primary")
    page.wait_for_url(f"**/reports/patients/{month.patients[patient]}/calendar?month={MONTH}")
    page.wait_for_selector("table.calendar tbody tr")
    assert page.locator("table.calendar tbody tr").count() == 31
    assert page.locator("table.calendar thead th").count() == 2 + 4
    assert page.locator("td.cell.st-unknown").count() >= 1  # her dispenser is often offline
    # 25 October: summer time ended that night, and the calendar says so on that day only.
    assert page.locator(".dst-tag").count() == 1
    assert "25" in page.locator("tr:has(.dst-tag) th").inner_text()
    _shot(page, f"reports-calendar-{lang}")
    assert _downloads_answer(page, web) >= 1

    assert foreign == [], "every script, style and chart library comes from the app itself"
    assert errors == [], errors
    page.goto(f"{web}/")  # a manager's start page is the overview
    page.wait_for_url("**/reports")
    with pool.connection() as conn:
        opened = conn.execute(
            "SELECT detail->>'report' AS report FROM audit_log WHERE action = 'open'"
            " AND object_type = 'patient' AND object_id = %s ORDER BY id",
            (str(month.patients[patient]),),
        ).fetchall()
    reports = [r["report"] for r in opened]  # type: ignore[call-overload]
    assert reports.count("patient") >= 2 and "calendar" in reports


def test_a_nurse_reads_only_her_own_team(
    pool: ConnectionPool, clock: FakeClock, web: str, new_page: Any, month: Seeded
) -> None:
    north, south = month.teams["Hemtjänst Norr"], month.teams["Hemtjänst Söder"]
    add_user(pool, "nora", "nurse", north, "en", clock.now(), name="Nora Nattsköterska")
    page = new_page()
    sign_in(page, web, "nora", f"/reports?month={MONTH}")
    # The municipality overview is for managers: a nurse lands on her own team.
    page.wait_for_url(f"**/reports/teams/{north}?month={MONTH}")
    page.wait_for_selector(".kpis")
    assert page.inner_text("h1") == "Hemtjänst Norr"
    assert page.locator("#crumbs a", has_text="Municipality").count() == 0
    assert page.locator(".downloads a[href*='.pdf']").count() == 1

    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # The picker: an ISO week instead of the month; the URL and the figures follow.
    page.select_option("#period-kind", "week")
    page.fill("#period-week", "2026-W43")
    page.click("#period button[type=submit]")
    page.wait_for_url(f"**/reports/teams/{north}?week=2026-W43")
    page.wait_for_selector(".kpis")
    assert "(7 " in page.inner_text("#report-sub")  # 7 days
    # No period at all: the current month up to the app clock's today.
    page.goto(f"{web}/reports/teams/{north}")
    page.wait_for_selector(".kpis")
    assert "23" in page.inner_text("#report-sub")  # 1–23 November (23 days)
    assert errors == [], errors

    page.goto(f"{web}/reports/teams/{south}?month={MONTH}")
    page.wait_for_selector(".report-error")
    assert "not in your team" in page.inner_text(".report-error")
    other = next(n for n, t in month.team_of.items() if t == "Hemtjänst Söder")
    page.goto(f"{web}/reports/patients/{month.patients[other]}?month={MONTH}")
    page.wait_for_selector(".report-error")
    assert "not in your team" in page.inner_text(".report-error")
    with pool.connection() as conn:
        denied = conn.execute(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'denied'"
        ).fetchone()
    assert denied is not None and denied["n"] >= 2  # type: ignore[call-overload]
