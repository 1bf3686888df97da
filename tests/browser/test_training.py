"""Training mode in a real browser: the admin page explains it and triggers a practice alarm;
the console shows it unmistakably (a TRÄNING badge on the row, a striped banner over the
detail) next to a real alarm that has neither. Screenshots in Swedish and English."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from dosewatch.clock import FakeClock
from dosewatch.domain.alarms import AlarmKind, Priority
from dosewatch.domain.opening import Subject
from dosewatch.domain.training_trigger import TriggerKind
from dosewatch.usecases import opening, training
from tests.browser.conftest import add_team, add_user, screenshot, sign_in
from tests.helpers import add_dispenser
from tests.scenario import put_patient_in_team


def _real_alarm(pool: ConnectionPool, clock: FakeClock) -> None:
    """A real team's patient pressed the help button: the real alarm beside the practice one."""
    team = add_team(pool, "Team Norr", clock.now())
    patient = add_dispenser(pool, "DSP-REAL", clock.now())
    put_patient_in_team(pool, patient, team)
    with pool.connection() as conn:
        conn.execute("UPDATE patients SET name = 'Astrid Lindqvist' WHERE id = %s", (patient,))
        subject = Subject(AlarmKind.HELP_BUTTON, Priority.HIGH, "DSP-REAL", patient, team)
        opening.open_alarms(conn, [subject], clock.now())


def test_admin_triggers_a_practice_alarm_and_the_console_marks_it(
    pool: ConnectionPool, clock: FakeClock, web: str, new_page: Any
) -> None:
    with pool.connection() as conn:
        made = training.set_up(conn, "Övning", ["+46709000001"], 2, clock.now())
    _real_alarm(pool, clock)
    add_user(pool, "ada", "admin", None, "sv", clock.now(), name="Ada Admin")
    add_user(pool, "eve", "admin", None, "en", clock.now(), name="Eve Admin")

    page = new_page("sv-SE")
    sign_in(page, web, "ada", "/admin/training")
    page.locator("#training-trigger").wait_for()
    assert page.evaluate("DWTraining.KINDS") == [k.value for k in TriggerKind]
    assert "Ett träningsteam är till för att öva en natt" in page.inner_text("#admin")
    page.select_option("#training-trigger select[name=dispenser_id]", made.dispenser_ids[0])
    page.select_option("#training-trigger select[name=kind]", "missed_dose")
    page.click("#training-trigger button")
    page.locator("#training-result a").wait_for()
    screenshot(page, "training-admin-sv")
    with pool.connection() as conn:
        row = conn.execute("SELECT id, kind FROM alarms WHERE dispenser_id = %s",
                           (made.dispenser_ids[0],)).fetchone()  # fmt: skip
    assert row is not None and row["kind"] == "missed_dose"

    # The link in the result opens the practice alarm in the console.
    page.click("#training-result a")
    page.locator("#training-banner").wait_for()
    assert "TRÄNINGSLARM" in page.inner_text("#training-banner")
    practice = page.locator(f"#alarms > li[data-id='{row['id']}']")
    assert practice.locator(".training-badge").inner_text() == "TRÄNING"
    real = page.locator("#alarms > li", has_text="Astrid Lindqvist")
    assert real.count() == 1 and real.locator(".training-badge").count() == 0
    screenshot(page, "training-console-sv")

    page = new_page()
    sign_in(page, web, "eve", f"/console?alarm={row['id']}")
    page.locator("#training-banner").wait_for()
    assert "TRAINING ALARM" in page.inner_text("#training-banner")
    screenshot(page, "training-console-en")
    # The real alarm's detail has no banner.
    page.locator("#alarms > li", has_text="Astrid Lindqvist").click()
    page.locator("#detail h2").wait_for()
    page.wait_for_function("!document.getElementById('training-banner')")
