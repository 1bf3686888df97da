"""The admin pages' controls for notification privacy, webhooks and SCAIP, driven as an admin.

What the page sends goes through the real API into the test database; the test then reads it
back through the API (and its audit log) or the database, never from the page alone. Delivery
and forward rows are put in their states by the outboxes' own SQL (``dosewatch/db``), so the
lists show what the senders would leave behind. The example SMS on the page is compared with
what :func:`dosewatch.messages.alarm_sms` really writes, so the explanation cannot drift.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg_pool import ConnectionPool

from dosewatch.clock import FakeClock
from dosewatch.db import scaip as scaip_sql
from dosewatch.db import webhooks as webhook_sql
from dosewatch.domain import scaip, webhooks
from dosewatch.domain.disclosure import Detail, Patient
from dosewatch.messages import AlarmFacts, alarm_sms
from tests.browser.conftest import add_team, add_user, screenshot, sign_in
from tests.helpers import add_dispenser
from tests.scenario import put_patient_in_team

TALL = {"width": 1440, "height": 2400}


def _example_sms(detail: Detail, language: str, base: str) -> str:
    """The sample the page explains each level with, written by the real message function."""
    due = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    patient = Patient(17, "Astrid Berg", "Storgatan 1, 903 26 Umeå", "Haga")
    facts = AlarmFacts(
        5, "missed_dose", "open", due, due, None, None, None, "1234", patient, detail
    )
    return alarm_sms([facts], language, ZoneInfo("Europe/Stockholm"), base)


def _alarm(pool: ConnectionPool, dispenser: str, team: int, now: datetime) -> int:
    patient = add_dispenser(pool, dispenser, now)
    put_patient_in_team(pool, patient, team)
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO alarms (kind, dispenser_id, patient_id, priority, opened_at, next_step_at)"
            " VALUES ('missed_dose', %s, %s, 'medium', %s, NULL) RETURNING id",
            (dispenser, patient, now),
        ).fetchone()
    assert row is not None
    return int(row["id"])  # type: ignore[call-overload]


def _forwards_in_each_state(pool: ConnectionPool, team: int, now: datetime) -> None:
    alarms = [_alarm(pool, f"DSP-{n}", team, now) for n in (1, 2, 3)]
    with pool.connection() as conn, conn.transaction():
        items = [(a, team, f"dw{a}", "sip:larm@127.0.0.1", b"<mrq/>") for a in alarms]
        scaip_sql.enqueue(conn, items, now)
        first, second, third = scaip_sql.claim(conn, now, 3)
        scaip_sql.record_received(conn, first.id, 200, "OK", now)
        scaip_sql.record_failure(conn, second.id, 503, "Service Unavailable", now + timedelta(1))
        scaip_sql.record_failure(conn, third.id, 404, "Not Found", None)


def _deliveries(pool: ConnectionPool, subscription: int, now: datetime) -> None:
    with pool.connection() as conn, conn.transaction():
        items = [(subscription, f"alarm-history-{n}", "alarm.opened", {"n": n}) for n in (1, 2)]
        webhook_sql.enqueue(conn, items, now)
        ok, bad = webhook_sql.claim(conn, now, 2)
        webhook_sql.record_sent(conn, ok.id, 204, now)
        webhook_sql.record_failure(conn, bad.id, 410, "Gone: this hook was removed", None)


def test_admin_sets_privacy_webhooks_and_scaip(
    pool: ConnectionPool, clock: FakeClock, web: str, new_page: Any
) -> None:
    now = clock.now()
    north, south = add_team(pool, "Team Norr", now), add_team(pool, "Team Söder", now)
    add_user(pool, "root", "admin", None, "en", now, name="Alva Admin")
    page = new_page()
    sign_in(page, web, "root", "/admin/teams")

    # 1. Notification privacy: both teams start minimal; the page explains with the real SMS.
    row = page.locator(f"#notification-privacy tr[data-team='{north}']")
    row.get_by_text("Minimal").first.wait_for()
    for level in Detail:
        shown = page.locator(f"code.sms[data-level='{level.value}']").inner_text()
        assert shown == _example_sms(level, "en", web)
    row.locator("select[name=detail]").select_option("full")
    row.locator("button").click()  # no reason: the browser asks for one, nothing is sent
    assert page.evaluate("document.querySelector('.np-form input[name=reason]:invalid') !== null")
    row.locator("input[name=reason]").fill("Night patrol has no console phones yet")
    row.locator("button").click()
    page.locator(f"#notification-privacy tr[data-team='{north}'] .np-full").wait_for()
    api = page.request.get(f"{web}/api/v1/teams/{north}/notification-privacy").json()
    assert api["detail"] == "full" and api["changed_by"] == "Alva Admin"
    other = page.request.get(f"{web}/api/v1/teams/{south}/notification-privacy").json()
    assert other["detail"] == "minimal"
    audit = page.request.get(f"{web}/api/v1/audit?action=update").json()
    [entry] = [a for a in audit if a["object_type"] == "notification_privacy"]
    assert entry["object_id"] == str(north) and entry["actor_name"] == "root"
    assert entry["detail"] == {
        "detail": "full", "before": "minimal", "reason": "Night patrol has no console phones yet"
    }  # fmt: skip

    # 2. Webhooks: the page offers exactly the API's events; none chosen is the API's 422, read.
    page.goto(f"{web}/admin/integrations")
    form = page.locator("#webhook-form")
    form.wait_for()
    offered = form.locator("input[name=events]").evaluate_all("els => els.map(e => e.value)")
    assert sorted(offered) == sorted(webhooks.ALL_EVENTS)
    form.locator("input[name=url]").fill("https://integration.example.se/dosewatch")
    form.locator("select[name=team_id]").select_option(str(north))
    for box in form.locator("input[name=events]").all():
        box.uncheck()
    form.get_by_role("button", name="Create subscription").click()
    error = page.locator("#webhooks .form-error")
    error.wait_for()
    assert "Events: choose at least one event" in error.inner_text()
    assert page.request.get(f"{web}/api/v1/webhooks").json() == []
    for event in ("alarm.opened", "alarm.acknowledged"):
        form.locator(f"input[value='{event}']").check()
    form.get_by_role("button", name="Create subscription").click()
    secret_box = page.locator(".secret-once")
    secret_box.wait_for()
    secret = page.locator("#webhook-secret").input_value()
    [sub] = page.request.get(f"{web}/api/v1/webhooks").json()
    assert sub["team_id"] == north and sub["events"] == ["alarm.acknowledged", "alarm.opened"]
    with pool.connection() as conn:
        stored = conn.execute("SELECT secret FROM webhook_subscriptions").fetchone()
    assert stored is not None and secret.startswith("whsec_")
    assert secret == stored["secret"]  # type: ignore[call-overload]
    assert "Store it now: this is the only time it is shown." in secret_box.inner_text()
    page.locator("#copy-secret").click()
    page.get_by_text("✓ Copied").wait_for()
    screenshot(page, "admin-webhook-secret-en")
    listed = page.locator(f"#webhooks tr[data-webhook='{sub['id']}']").inner_text()
    assert "Team Norr" in listed and "https://integration.example.se/dosewatch" in listed

    # 3. SCAIP: the page offers the kinds SCAIP can carry; none chosen is read out; then set.
    scaip_form = page.locator("#scaip-form")
    kinds = scaip_form.locator("input[name=kinds]").evaluate_all("els => els.map(e => e.value)")
    assert sorted(kinds) == sorted(scaip.FORWARDABLE_KINDS)
    scaip_form.locator("input[name=centre_uri]").fill("sip:larm@larmcentral.example.se")
    scaip_form.locator("input[name=controller_id]").fill("UMEA-HHC-1")
    scaip_form.locator("input[name=kinds]").uncheck()
    scaip_form.get_by_role("button", name="Save").click()
    page.locator("#scaip .form-error").wait_for()
    assert "choose at least one alarm kind" in page.locator("#scaip .form-error").inner_text()
    scaip_form.locator("input[name=kinds]").check()
    scaip_form.get_by_role("button", name="Save").click()
    page.locator("#scaip tr", has_text="sip:larm@larmcentral.example.se").wait_for()
    settings = page.request.get(f"{web}/api/v1/teams/{north}/scaip").json()
    assert settings["centre_uri"] == "sip:larm@larmcentral.example.se"
    assert settings["controller_id"] == "UMEA-HHC-1" and settings["kinds"] == ["missed_dose"]
    assert page.locator(".secret-once").is_visible()  # a save elsewhere keeps the secret shown

    # Deliveries and forwards as the outboxes leave them: failed ones stand out.
    _deliveries(pool, sub["id"], now)
    _forwards_in_each_state(pool, north, now)
    page.reload()
    assert secret not in page.content()  # shown once: a reload cannot bring it back
    page.locator(f"tr[data-webhook='{sub['id']}']").get_by_role("button", name="Deliveries").click()
    failed = page.locator("#deliveries tr.drow-failed")
    failed.wait_for()
    assert "HTTP 410" in failed.inner_text() and "Failed" in failed.inner_text()
    assert page.locator("#deliveries tr.drow-sent").count() == 1
    page.locator("#scaip tr.drow-failed").wait_for()
    states = page.locator("#scaip tr.drow-received, #scaip tr.drow-pending, #scaip tr.drow-failed")
    assert states.count() == 3
    assert "SIP 404" in page.locator("#scaip tr.drow-failed").inner_text()
    page.set_viewport_size(TALL)
    screenshot(page, "admin-integrations-en")
    page.goto(f"{web}/admin/teams")
    page.locator("#notification-privacy .np-full").wait_for()
    screenshot(page, "admin-privacy-en")


def test_the_pages_in_swedish_and_an_api_sentence_error(
    pool: ConnectionPool, clock: FakeClock, web: str, new_page: Any
) -> None:
    now = clock.now()
    team = add_team(pool, "Team Norr", now)
    add_user(pool, "rot", "admin", None, "sv", now, name="Rut Rot")
    with pool.connection() as conn, conn.transaction():
        sub = webhook_sql.create_subscription(
            conn, team_id=team, url="https://journal.example.se/hook", secret="whsec_x",
            events=sorted(webhooks.ALL_EVENTS), by="Rut Rot", now=now,
        )  # fmt: skip
        scaip_sql.put_settings(
            conn, team, centre_uri="sip:larm@larmcentral.example.se", controller_id="UMEA-HHC-1",
            kinds=["missed_dose"], active=True, by="Rut Rot", now=now,
        )  # fmt: skip
    _deliveries(pool, sub.id, now)
    _forwards_in_each_state(pool, team, now)
    page = new_page("sv-SE")
    sign_in(page, web, "rot", "/admin/teams")
    page.locator("#notification-privacy .np-minimal").first.wait_for()
    for level in Detail:
        shown = page.locator(f"code.sms[data-level='{level.value}']").inner_text()
        assert shown == _example_sms(level, "sv", web)
    page.set_viewport_size(TALL)
    screenshot(page, "admin-privacy-sv")

    page.goto(f"{web}/admin/integrations")
    row = page.locator(f"tr[data-webhook='{sub.id}']")
    row.get_by_role("button", name="Leveranser").click()
    page.locator("#deliveries tr.drow-failed").wait_for()
    page.locator("#scaip tr.drow-failed").wait_for()
    page.set_viewport_size(TALL)
    screenshot(page, "admin-integrations-sv")

    # Removed behind the page's back: the API's 404 sentence is shown where the button was.
    with pool.connection() as conn:
        conn.execute("DELETE FROM webhook_deliveries")
        conn.execute("DELETE FROM webhook_subscriptions")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Inaktivera").click()
    error = page.locator("#webhooks .form-error")
    error.wait_for()
    assert "Inte sparat" in error.inner_text()
    assert f"webhook {sub.id} does not exist" in error.inner_text()


def test_a_manager_sees_the_forwards_but_not_the_admin_settings(
    pool: ConnectionPool, clock: FakeClock, web: str, new_page: Any
) -> None:
    now = clock.now()
    team = add_team(pool, "Team Norr", now)
    add_user(pool, "maja", "manager", team, "en", now, name="Maja Chef")
    _forwards_in_each_state(pool, team, now)
    page = new_page()
    sign_in(page, web, "maja", "/admin/integrations")
    page.locator("#scaip tr.drow-failed").wait_for()
    assert page.locator("#webhook-form, #scaip-form").count() == 0
    assert "Webhooks: set by an administrator." in page.locator("#admin").inner_text()
    assert "SCAIP settings: set by an administrator." in page.locator("#admin").inner_text()
