"""The demo's own data in the managers' pages: overview, a team, a patient and the monthly
PDF's first page, in Swedish and English, signed in as the demo's printed manager.

The data is made by the demo's own set-up code (its three patients, its sign-ins) and its
history (:func:`service.demo_fleet.make_history`: the Umeå fleet through the gateway's writer,
the sweeps and the API). The history here is 14 days, not the demo's 30, to keep the browser
suite short; the 30-day figures are held by tests/integration/test_demo_figures.py.
Screenshots go to test-output/screenshots/demo-*.png.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from psycopg_pool import ConnectionPool
from pypdf import PdfReader

from dispenser_sim.profiles import load_fleet
from dosewatch.clock import FakeClock
from service import demo
from service.demo_fleet import make_history
from tests.browser.test_reports import _charts_drawn, _pct, _pdf_first_page, _shot

DAYS = 14


def _sign_in(page: Any, web: str, username: str, password: str, next_path: str) -> None:
    page.goto(f"{web}/login?next={quote(next_path)}")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def test_demo_reports_in_both_languages(
    pool: ConnectionPool, clock: FakeClock, web: str, new_page: Any, tmp_path: Path
) -> None:
    now = clock.now()
    with pool.connection() as conn, conn.transaction():
        demo.set_up(conn, now, "Europe/Stockholm", timedelta(hours=48))
        lines = demo.sign_in(conn, now)
    make_history(pool, load_fleet(demo.FLEET), DAYS, now, wall=clock.now)
    creds = {ln.split()[3]: ln.split()[5] for ln in lines if ln.startswith("Sign in as ")}
    token = next(ln for ln in lines if ln.startswith("API token: ")).removeprefix("API token: ")
    first = (now - timedelta(days=DAYS)).date().isoformat()
    last = (now - timedelta(days=1)).date().isoformat()
    period = f"from={first}&to={last}"

    for lang in ("sv", "en"):
        page = new_page("sv-SE" if lang == "sv" else "en-GB")
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        admin = {"Authorization": f"Bearer {token}"}
        users = page.request.get(f"{web}/api/v1/users", headers=admin).json()
        manager = next(u for u in users if u["username"] == "demo-manager")
        r = page.request.patch(
            f"{web}/api/v1/users/{manager['id']}", data={"language": lang}, headers=admin
        )
        assert r.status == 200, r.text()
        _sign_in(page, web, "demo-manager", creds["demo-manager"], f"/reports?{period}")

        # The overview: believable figures from the slots, charts drawn.
        page.wait_for_selector(".kpis")
        api = page.request.get(f"{web}/api/v1/reports/municipality?{period}").json()
        taking = api["figures"]["taking_adherence_pct"]
        assert 99.0 <= taking <= 99.9, api["figures"]
        assert _pct(taking, lang) in page.inner_text(".kpis")
        page.wait_for_function("() => [...document.querySelectorAll('canvas')].length >= 3")
        assert _charts_drawn(page) >= 3
        _shot(page, f"demo-overview-{lang}")

        with page.expect_download() as download:
            page.click(".downloads a[href*='municipality.pdf']")
        pdf = tmp_path / f"demo-{lang}.pdf"
        download.value.save_as(pdf)
        assert _pct(taking, lang) in PdfReader(pdf).pages[0].extract_text()
        assert _pdf_first_page(pdf, f"demo-report-pdf-{lang}").stat().st_size > 20_000

        # → the east team (the demo nurse's, with the three demo patients too)
        page.click(f"table.figures a:text('{demo.DEMO_TEAM}')")
        page.wait_for_selector("table.figures a[href^='/reports/patients/']")
        assert page.inner_text("h1") == demo.DEMO_TEAM
        page.wait_for_function("() => [...document.querySelectorAll('canvas')].length >= 2")
        assert _charts_drawn(page) >= 2
        _shot(page, f"demo-team-{lang}")

        # → the team's patient with the lowest adherence over the period (the demo's own three
        # have only today's doses, outside it)
        team_id = next(t["team_id"] for t in api["teams"] if t["name"] == demo.DEMO_TEAM)
        rows = page.request.get(f"{web}/api/v1/reports/teams/{team_id}?{period}").json()
        counted = [r for r in rows["patients"] if r["figures"]["expected"] > 0]
        worst = min(counted, key=lambda r: r["figures"]["taking_adherence_pct"])
        page.locator(f"table.figures a[href^='/reports/patients/{worst['patient_id']}?']").click()
        page.wait_for_url(f"**/reports/patients/{worst['patient_id']}?**")
        page.wait_for_selector(f"h1:text-is('{worst['name']}')")
        page.wait_for_selector(".kpis")
        page.wait_for_function("() => [...document.querySelectorAll('canvas')].length >= 2")
        assert _charts_drawn(page) >= 2
        # A figure left out (no under-threshold note) must leave nothing behind, not "null".
        assert "null" not in page.inner_text("#report-body")
        _shot(page, f"demo-patient-{lang}")
        assert errors == [], errors
