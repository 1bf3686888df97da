"""The issue's escalation scenario end to end through the real ``twilio`` client.

The stand-in records what Twilio's API would receive, stamped with the fake clock; a nurse's
keypress comes back through the signed voice webhook, as Twilio would send it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from twilio.request_validator import RequestValidator

from alarms.twilio_notifier import TwilioNotifier
from dashboards.app import create_app
from dosewatch.clock import FakeClock
from tests.helpers import alarms_of
from tests.scenario import STOCKHOLM, Scenario, nurse_and_lead_with_a_patient
from tests.twilio_standin import TwilioStandIn

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm
PRIMARY, LEAD = "+46701111111", "+46702222222"
FROM, PUBLIC = "+46101234567", "https://dosewatch.example.se"
SHIFT = (datetime(2026, 11, 23, 6, 0, tzinfo=UTC), datetime(2026, 11, 23, 15, 0, tzinfo=UTC))


def local(hh_mm: str) -> datetime:
    h, m = map(int, hh_mm.split(":"))
    return datetime(2026, 11, 23, h - 1, m, tzinfo=UTC)


@pytest.fixture
def standin(clock: FakeClock) -> Iterator[TwilioStandIn]:
    with TwilioStandIn(clock=clock.now) as s:
        yield s


@pytest.fixture
def scenario(pool: ConnectionPool, clock: FakeClock, standin: TwilioStandIn) -> Scenario:
    nurse_and_lead_with_a_patient(pool, clock.now(), (PRIMARY, LEAD), SHIFT)
    notifier = TwilioNotifier(
        standin.account_sid, standin.auth_token, FROM, PUBLIC, api_url=standin.url
    )
    return Scenario(pool, clock, notifier)


def received(standin: TwilioStandIn) -> list[tuple[str, str, str]]:
    """(local HH:MM of the create, kind, To) for every request Twilio accepted."""
    rows = [(r, "sms") for r in standin.sms] + [(r, "call") for r in standin.calls]
    return sorted(
        (standin.created_at(r["sid"]).astimezone(STOCKHOLM).strftime("%H:%M"), kind, r["To"])
        for r, kind in rows
    )


def test_sms_call_lead_then_late_dose_all_clear(
    scenario: Scenario, standin: TwilioStandIn, pool: ConnectionPool
) -> None:
    scenario.at(local("09:07"), lambda: scenario.dose_taken("DSP-1", DUE))
    scenario.run_until(local("10:00"))
    assert received(standin) == [
        ("08:45", "sms", PRIMARY),
        ("08:55", "call", PRIMARY),
        ("09:05", "call", LEAD),
        ("09:05", "sms", LEAD),
        ("09:07", "sms", PRIMARY),  # all-clear
        ("09:07", "sms", LEAD),  # all-clear
    ]
    first = standin.sms[0]
    assert first["From"] == FROM and "Missad dos 08:00" in first["Body"]
    assert first["StatusCallback"] == f"{PUBLIC}/twilio/sms/status"
    assert standin.calls[0]["Url"].startswith(f"{PUBLIC}/twilio/voice?n=")
    [alarm] = alarms_of(pool, "DSP-1")
    assert (alarm["state"], alarm["acknowledged_at"]) == ("cleared", None)


def test_a_keypress_on_the_call_stops_the_escalation(
    scenario: Scenario, standin: TwilioStandIn, pool: ConnectionPool, clock: FakeClock
) -> None:
    scenario.run_until(local("08:56"))
    call = standin.calls[0]
    form = {"CallSid": call["sid"], "From": FROM, "To": PRIMARY}
    app = create_app(pool, clock, twilio_auth_token=standin.auth_token, public_url=PUBLIC)
    with TestClient(app) as api:
        # Twilio fetches the call's TwiML, then follows each Gather's action with the key:
        # the first key hears the alarm, the second acknowledges it.
        url, answers = call["Url"], []
        for _ in range(3):
            signature = RequestValidator(standin.auth_token).compute_signature(url, form)
            r = api.post(
                url.removeprefix(PUBLIC), data=form, headers={"X-Twilio-Signature": signature}
            )
            assert r.status_code == 200
            answers.append(r.text)
            gather = ET.fromstring(r.text).find("Gather")
            if gather is None:
                break
            url, form = gather.attrib["action"], {**form, "Digits": "1"}
    assert len(answers) == 3 and "kvitterat" in answers[-1]
    scenario.run_until(local("09:30"))
    # Nobody else is paged; 30 min after her keypress (08:57) Anna is reminded to resolve it.
    assert received(standin) == [
        ("08:45", "sms", PRIMARY),
        ("08:55", "call", PRIMARY),
        ("09:27", "sms", PRIMARY),
    ]
    assert "Påminnelse" in standin.sms[-1]["Body"]
    [alarm] = alarms_of(pool, "DSP-1")
    assert alarm["state"] == "acknowledged" and alarm["acknowledged_by"] == "Anna"
