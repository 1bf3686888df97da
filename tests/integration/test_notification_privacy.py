"""Issue 16: what SMS and calls say about a patient, through the real ``twilio`` client.

Every message is what the Twilio stand-in received (or, for a call, the TwiML our webhook
served when Twilio fetched it, signed as Twilio signs). By default a message names the patient
by initials, reference and district only; the full name and address appear only after the
team's setting is changed, which is audited; a call says nothing about anyone before a key.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from twilio.request_validator import RequestValidator

from alarms.twilio_notifier import TwilioNotifier
from dashboards.app import create_app
from dosewatch.clock import FakeClock
from tests.auth_helpers import bearer
from tests.helpers import alarms_of
from tests.scenario import Scenario, nurse_and_lead_with_a_patient
from tests.twilio_standin import TwilioStandIn

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm
PRIMARY, LEAD, RELATIVE = "+46701111111", "+46702222222", "+46705551234"
FROM, PUBLIC = "+46101234567", "https://dosewatch.example.se"
SHIFT = (datetime(2026, 11, 23, 6, 0, tzinfo=UTC), datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
NAME, ADDRESS, PHONE = "Astrid Berg", "Storgatan 1, 903 26 Umeå", "+46 90 12 34 56"
DISTRICT = "Haga"
# Anything that identifies the patient beyond the minimum: no default message may carry it.
IDENTIFYING = ("Astrid", "Berg", "Storgatan", "903 26", PHONE, "901234", RELATIVE, "Waran")


def local(hh_mm: str) -> datetime:
    h, m = map(int, hh_mm.split(":"))
    return datetime(2026, 11, 23, h - 1, m, tzinfo=UTC)


@pytest.fixture
def standin(clock: FakeClock) -> Iterator[TwilioStandIn]:
    with TwilioStandIn(clock=clock.now) as s:
        yield s


@pytest.fixture
def world(pool: ConnectionPool, clock: FakeClock) -> dict[str, int]:
    """Astrid Berg, with an address, a phone, a relative with SMS consent, and a labelled 08:00
    dose; nurses Anna (primary) and Lars (lead) of her team."""
    team = nurse_and_lead_with_a_patient(pool, clock.now(), (PRIMARY, LEAD), SHIFT)
    with pool.connection() as conn:
        patient = conn.execute(
            "UPDATE patients SET name = %s, address = %s, phone = %s, district = %s,"
            " contact_phone = %s, contact_sms_consent_at = %s RETURNING id",
            (NAME, ADDRESS, PHONE, DISTRICT, RELATIVE, clock.now()),
        ).fetchone()
        conn.execute("UPDATE dose_slots SET label = 'Waran 5 mg'")
    assert patient is not None
    return {"team": team, "patient": int(patient["id"])}


@pytest.fixture
def scenario(
    pool: ConnectionPool, clock: FakeClock, standin: TwilioStandIn, world: dict[str, int]
) -> Scenario:
    notifier = TwilioNotifier(
        standin.account_sid, standin.auth_token, FROM, PUBLIC, api_url=standin.url
    )
    return Scenario(pool, clock, notifier)


@pytest.fixture
def api(pool: ConnectionPool, clock: FakeClock, standin: TwilioStandIn) -> Iterator[TestClient]:
    app = create_app(pool, clock, twilio_auth_token=standin.auth_token, public_url=PUBLIC)
    with TestClient(app) as client:
        yield client


def bodies(standin: TwilioStandIn, to: str) -> list[str]:
    return [m["Body"] for m in standin.sms if m["To"] == to]


def assert_minimal(body: str, world: dict[str, int], alarm_id: int) -> None:
    for word in IDENTIFYING:
        assert word not in body, (word, body)
    assert f"A.B. #{world['patient']}" in body and DISTRICT in body
    assert f"{PUBLIC}/console?alarm={alarm_id}" in body


def test_default_alarm_and_all_clear_sms_carry_no_name_address_or_phone(
    scenario: Scenario, standin: TwilioStandIn, pool: ConnectionPool, world: dict[str, int]
) -> None:
    scenario.at(local("09:07"), lambda: scenario.dose_taken("DSP-1", DUE))
    scenario.run_until(local("09:10"))
    [alarm] = alarms_of(pool, "DSP-1")
    first, all_clear = bodies(standin, PRIMARY)
    assert first.startswith(f"dosewatch: Missad dos 08:00, A.B. #{world['patient']}, {DISTRICT}.")
    assert f"Svara OK {alarm['ack_code']}" in first
    assert_minimal(first, world, alarm["id"])
    assert all_clear.startswith("dosewatch: Klart:")
    assert_minimal(all_clear, world, alarm["id"])
    [lead_alarm, lead_all_clear] = bodies(standin, LEAD)
    for body in (lead_alarm, lead_all_clear):
        assert_minimal(body, world, alarm["id"])


def test_the_full_form_appears_only_after_the_team_turns_it_on_and_that_is_audited(
    scenario: Scenario,
    standin: TwilioStandIn,
    pool: ConnectionPool,
    clock: FakeClock,
    world: dict[str, int],
    api: TestClient,
) -> None:
    url = f"/api/v1/teams/{world['team']}/notification-privacy"
    manager = bearer(pool, "manager")
    assert api.get(url, headers=manager).json() == {
        "team_id": world["team"],
        "detail": "minimal",
        "changed_at": None,
        "changed_by": None,
    }
    # A nurse may read the setting but not change it; another team's nurse does not see it.
    nurse = bearer(pool, "nurse", world["team"])
    assert api.get(url, headers=nurse).json()["detail"] == "minimal"
    assert api.put(url, json={"detail": "full"}, headers=nurse).status_code == 403
    assert api.put(url, json={"detail": "everything"}, headers=manager).status_code == 422
    assert api.put("/api/v1/teams/99999/notification-privacy", json={"detail": "full"},
                   headers=manager).status_code == 404  # fmt: skip

    scenario.run_until(local("08:50"))  # the first SMS, to Anna, at 08:45
    changes: list[Any] = []
    body = {"detail": "full", "reason": "rural team: nurses drive from the SMS"}
    scenario.at(local("09:00"), lambda: changes.append(api.put(url, json=body, headers=manager)))
    scenario.run_until(local("09:06"))  # the lead's SMS at 09:05

    [alarm] = alarms_of(pool, "DSP-1")
    [before] = bodies(standin, PRIMARY)
    assert_minimal(before, world, alarm["id"])
    [after] = bodies(standin, LEAD)
    assert f"{NAME}, {ADDRESS}, {DISTRICT}" in after
    assert PHONE not in after and "901234" not in after  # the phone: never
    assert f"{PUBLIC}/console?alarm={alarm['id']}" in after

    [answer] = changes
    assert answer.status_code == 200, answer.text
    assert answer.json()["detail"] == "full"
    assert answer.json()["changed_at"] == "2026-11-23T08:00:00Z"
    with pool.connection() as conn:
        audited = conn.execute(
            "SELECT at, actor_kind, actor_role, action, object_type, object_id, detail"
            " FROM audit_log WHERE object_type = 'notification_privacy'"
        ).fetchall()
    assert audited == [
        {
            "at": local("09:00"),
            "actor_kind": "token",
            "actor_role": "manager",
            "action": "update",
            "object_type": "notification_privacy",
            "object_id": str(world["team"]),
            "detail": {"detail": "full", "before": "minimal", "reason": body["reason"]},
        }
    ]
    # Setting it again changes nothing and audits nothing.
    assert api.put(url, json={"detail": "full"}, headers=manager).json() == answer.json()
    with pool.connection() as conn:
        n = conn.execute(
            "SELECT count(*) AS n FROM audit_log WHERE object_type = 'notification_privacy'"
        ).fetchone()
    assert n is not None and n["n"] == 1


def test_the_relatives_reminder_mentions_no_medication_details(
    pool: ConnectionPool, clock: FakeClock, standin: TwilioStandIn, world: dict[str, int]
) -> None:
    policy = {
        "steps": [
            {"target": "patient_contact", "channels": ["sms"], "wait_min": 10},
            {"target": "on_duty", "channels": ["sms"], "wait_min": 10},
        ]
    }
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO escalation_policies (team_id, version, policy, created_at, created_by)"
            " VALUES (%s, 1, %s, %s, 'test')",
            (world["team"], json.dumps(policy), clock.now()),
        )
        conn.execute("UPDATE teams SET notification_detail = 'full'")  # nurses' level only
    notifier = TwilioNotifier(standin.account_sid, standin.auth_token, FROM, PUBLIC, standin.url)
    Scenario(pool, clock, notifier).run_until(local("08:46"))
    [reminder] = bodies(standin, RELATIVE)
    body = reminder.rsplit("\n", 1)[0]  # without the [n<id>] tag
    assert body == "Påminnelse från hemtjänsten: det är dags för din medicin i dispensern."
    for word in (*IDENTIFYING, "08:00", "Missad", "dos ", "/console"):
        assert word not in body


# --- calls -----------------------------------------------------------------------------


def twilio_post(api: TestClient, token: str, url: str, form: dict[str, str]) -> Any:
    """POST as Twilio does: form-encoded and signed over the public URL and the fields."""
    signature = RequestValidator(token).compute_signature(url, form)
    return api.post(url.removeprefix(PUBLIC), data=form, headers={"X-Twilio-Signature": signature})


def spoken(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [say.text or "" for say in ET.fromstring(response.text).iter("Say")]


def patient_data(texts: list[str], world: dict[str, int]) -> list[str]:
    """Every piece of patient or alarm data found in what was said."""
    said = " ".join(texts)
    found = [w for w in (*IDENTIFYING, "A.B.", DISTRICT, "08:00", "Missad", "dos ") if w in said]
    return found + re.findall(rf"\b{world['patient']}\b", said)


def test_the_call_says_nothing_about_the_patient_until_a_key_is_pressed(
    scenario: Scenario,
    standin: TwilioStandIn,
    pool: ConnectionPool,
    world: dict[str, int],
    api: TestClient,
) -> None:
    scenario.run_until(local("08:56"))
    [call] = standin.calls
    assert call["To"] == PRIMARY
    form = {"CallSid": call["sid"], "From": FROM, "To": PRIMARY, "CallStatus": "in-progress"}
    first = twilio_post(api, standin.auth_token, call["Url"], form)
    assert spoken(first) == [
        "dosewatch-larm. Tryck på valfri knapp.",
        "Ingen knapp trycktes. Larmet är inte kvitterat.",
    ]
    assert patient_data(spoken(first), world) == []

    [gather] = ET.fromstring(first.text).iter("Gather")
    pressed = twilio_post(api, standin.auth_token, gather.attrib["action"], {**form, "Digits": "1"})
    details = spoken(pressed)[0]
    assert details == (
        f"Missad dos klockan 08:00 för A.B. nummer {world['patient']}, {DISTRICT}."
        " Tryck valfri siffra för att kvittera."
    )
    for word in IDENTIFYING:
        assert word not in details
    [alarm] = alarms_of(pool, "DSP-1")
    assert alarm["acknowledged_at"] is None  # hearing the details is not acknowledging

    # With the full form, the details (and only they) say the name and the address.
    with pool.connection() as conn:
        conn.execute("UPDATE teams SET notification_detail = 'full'")
    assert (
        patient_data(spoken(twilio_post(api, standin.auth_token, call["Url"], form)), world) == []
    )
    pressed = twilio_post(api, standin.auth_token, gather.attrib["action"], {**form, "Digits": "1"})
    assert f"{NAME}, {ADDRESS}" in spoken(pressed)[0]

    # The second key acknowledges.
    [ack] = ET.fromstring(pressed.text).iter("Gather")
    acked = twilio_post(api, standin.auth_token, ack.attrib["action"], {**form, "Digits": "1"})
    assert spoken(acked) == ["Tack. Larmet är kvitterat."]
    [alarm] = alarms_of(pool, "DSP-1")
    assert alarm["acknowledged_by"] == "Anna"


def test_a_voicemail_records_nothing_identifying_and_the_call_is_not_an_acknowledgement(
    scenario: Scenario,
    standin: TwilioStandIn,
    pool: ConnectionPool,
    world: dict[str, int],
    api: TestClient,
) -> None:
    scenario.run_until(local("08:56"))
    [call] = standin.calls
    base = {"CallSid": call["sid"], "From": FROM, "To": PRIMARY}
    status_url = call["StatusCallback"]
    twilio_post(api, standin.auth_token, status_url, {**base, "CallStatus": "in-progress"})
    # A voicemail answers: it records whatever the TwiML says while nobody presses a key.
    recorded = spoken(twilio_post(api, standin.auth_token, call["Url"], {**base}))
    # Twilio asked to report an empty Gather (actionOnEmptyResult) would post no Digits.
    [gather] = ET.fromstring(twilio_post(api, standin.auth_token, call["Url"], {**base}).text).iter(
        "Gather"
    )
    recorded += spoken(twilio_post(api, standin.auth_token, gather.attrib["action"], base))
    assert patient_data(recorded, world) == []
    done = {**base, "CallStatus": "completed", "AnsweredBy": "machine_end_beep"}
    assert twilio_post(api, standin.auth_token, status_url, done).status_code == 204

    with pool.connection() as conn:
        status = conn.execute("SELECT status FROM notifications WHERE channel = 'voice'").fetchone()
    assert status is not None and status["status"] == "no_keypress"
    [alarm] = alarms_of(pool, "DSP-1")
    assert alarm["acknowledged_at"] is None and alarm["state"] == "open"
    scenario.run_until(local("09:06"))  # not acknowledged: the lead is paged at 09:05
    assert [c["To"] for c in standin.calls] == [PRIMARY, LEAD]
