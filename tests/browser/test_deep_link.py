"""The link in an alarm SMS, opened on a phone: sign in, and land on that alarm (issue 16).

The SMS is the one the real ``twilio`` client handed to the stand-in; its link points at the
app under test. Another, higher-priority alarm is open too, so landing on the linked one is the
link's doing and not the console's usual first pick.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect
from psycopg_pool import ConnectionPool

from alarms.twilio_notifier import TwilioNotifier
from dosewatch.clock import FakeClock
from tests.browser.conftest import PASSWORD, add_user, screenshot
from tests.helpers import add_dispenser, alarms_of
from tests.scenario import Scenario, nurse_and_lead_with_a_patient, put_patient_in_team
from tests.twilio_standin import TwilioStandIn

PRIMARY, LEAD, FROM = "+46701111111", "+46702222222", "+46101234567"
SHIFT = (datetime(2026, 11, 23, 6, 0, tzinfo=UTC), datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="sv-SE",
        timezone_id="Europe/Stockholm",
    )
    yield ctx.new_page()
    ctx.close()


def test_the_sms_link_opens_that_alarm_after_sign_in_on_a_phone(
    pool: ConnectionPool, clock: FakeClock, web: str, phone: Any
) -> None:
    team = nurse_and_lead_with_a_patient(pool, clock.now(), (PRIMARY, LEAD), SHIFT)
    add_user(pool, "anna", "nurse", team, "sv", clock.now(), name="Anna Sjöström")
    with pool.connection() as conn:
        conn.execute(
            "UPDATE patients SET name = 'Astrid Berg', address = 'Storgatan 1, 903 26 Umeå',"
            " district = 'Haga'"
        )
    # Someone else's older, high-priority alarm: the console would show it first.
    other = add_dispenser(pool, "DSP-2", clock.now())
    put_patient_in_team(pool, other, team)
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO alarms (kind, dispenser_id, patient_id, priority, opened_at)"
            " VALUES ('help_button', 'DSP-2', %s, 'high', %s)",
            (other, clock.now()),
        )
        conn.execute("UPDATE alarms SET next_step_at = NULL")  # and pages nobody

    with TwilioStandIn(clock=clock.now) as standin:
        notifier = TwilioNotifier(standin.account_sid, standin.auth_token, FROM, web, standin.url)
        Scenario(pool, clock, notifier).run_until(datetime(2026, 11, 23, 7, 46, tzinfo=UTC))
        [sms] = [m for m in standin.sms if m["To"] == PRIMARY]
    [alarm] = alarms_of(pool, "DSP-1")
    match = re.search(r"(https?://\S+/console\?alarm=(\d+))", sms["Body"])
    assert match is not None, sms["Body"]
    link, linked_id = match.group(1), int(match.group(2))
    assert linked_id == alarm["id"] and "Astrid" not in sms["Body"]

    phone.goto(link)
    assert "/login?next=" in phone.url  # signed out: to sign-in, the link kept in next
    phone.fill("#username", "anna")
    phone.fill("#password", PASSWORD)
    phone.click("button[type=submit]")
    phone.wait_for_url(re.compile(rf"/console\?alarm={linked_id}$"))
    detail = phone.locator(f"#detail[data-alarm-id='{linked_id}']")
    detail.wait_for()
    # Behind sign-in, the console has the rest: the full name and the address.
    assert "Astrid Berg" in detail.inner_text() and "Storgatan 1" in detail.inner_text()
    assert phone.locator(f"#alarms > li[data-id='{linked_id}'].selected").count() == 1
    # On the phone's screen: the alarm's heading and its acknowledge button are in view, and
    # nothing is wider than the screen.
    # (expect retries: the console's stream reloads the list and re-renders the detail once it
    # connects, which on a loaded machine can fall just here)
    for what in ("#detail h2", "#detail #ack"):
        expect(phone.locator(what)).to_be_in_viewport(ratio=1)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "deep-link-phone-sv")

    # A link to another team's alarm shows nothing of it: the same answer as no such alarm.
    theirs = add_dispenser(pool, "DSP-3", clock.now())
    with pool.connection() as conn:
        conn.execute("INSERT INTO teams (name, created_at) VALUES ('Söder', %s)", (clock.now(),))
        conn.execute(
            "UPDATE patients SET name = 'Someone Else',"
            " team_id = (SELECT id FROM teams WHERE name = 'Söder') WHERE id = %s",
            (theirs,),
        )
        row = conn.execute(
            "INSERT INTO alarms (kind, dispenser_id, patient_id, priority, opened_at)"
            " VALUES ('help_button', 'DSP-3', %s, 'high', %s) RETURNING id",
            (theirs, clock.now()),
        ).fetchone()
    assert row is not None
    phone.goto(f"{web}/console?alarm={row['id']}")
    phone.locator("#detail-error").wait_for()
    assert phone.inner_text("#detail-error") == (
        f"Larm {row['id']} finns inte, eller hör inte till ditt team."
    )
    assert "Someone Else" not in phone.content()


def test_sign_in_never_sends_the_browser_to_another_site(
    pool: ConnectionPool, clock: FakeClock, web: str, phone: Any
) -> None:
    add_user(pool, "ada", "admin", None, "en", clock.now())
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        phone.goto(f"{web}/login?next={evil}")
        assert phone.locator("#login").get_attribute("data-next") == "/"
    phone.fill("#username", "ada")
    phone.fill("#password", PASSWORD)
    phone.click("button[type=submit]")
    phone.wait_for_url(lambda url: "/login" not in url)
    assert phone.url.startswith(web)
