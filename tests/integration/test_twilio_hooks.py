"""Twilio's webhooks through the app, signed as Twilio signs them, on the real database."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool
from twilio.request_validator import RequestValidator

from alarms.jobs import sweep_missed_doses
from dashboards.app import create_app
from dosewatch.clock import FakeClock
from dosewatch.db import alarms as alarm_sql
from tests.helpers import add_dispenser

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://dosewatch.example.org"
ANNA, LARS, STRANGER = "+46701111111", "+46702222222", "+46709999999"
AFTER_WINDOW = datetime(2026, 11, 23, 7, 46, tzinfo=UTC)  # 08:00 Stockholm + 45 min + 1


def one(pool: ConnectionPool, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any]:
    with pool.connection() as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return cast(dict[str, Any], row)


@pytest.fixture
def world(pool: ConnectionPool, clock: FakeClock) -> dict[str, Any]:
    """Astrid Berg missed her 08:00 dose, Bo Ek too; nurses Anna (sv) and Lars (en)."""
    astrid = add_dispenser(pool, "DSP-1", clock.now())
    bo = add_dispenser(pool, "DSP-2", clock.now())
    now = clock.now()
    team = one(pool, "INSERT INTO teams (name, created_at) VALUES ('N', %s) RETURNING id", (now,))
    nurses = {
        name: one(
            pool,
            "INSERT INTO nurses (team_id, name, phone, language, created_at)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (team["id"], name, phone, lang, now),
        )["id"]
        for name, phone, lang in (("Anna", ANNA, "sv"), ("Lars", LARS, "en"))
    }
    with pool.connection() as conn:
        conn.execute("UPDATE patients SET team_id = %s", (team["id"],))
        conn.execute("UPDATE patients SET name = 'Astrid Berg' WHERE id = %s", (astrid,))
        conn.execute("UPDATE patients SET name = 'Bo Ek' WHERE id = %s", (bo,))
    clock.set(AFTER_WINDOW)
    sweep_missed_doses(pool, clock)
    with pool.connection() as conn:
        # A known reply code, and the next escalation step still ahead (as after a step ran).
        conn.execute(
            "UPDATE alarms SET ack_code = CASE dispenser_id WHEN 'DSP-1' THEN '1234'"
            " ELSE '5678' END, next_step_at = %s",
            (clock.now() + timedelta(minutes=10),),
        )
    alarm = one(pool, "SELECT id FROM alarms WHERE dispenser_id = 'DSP-1'")["id"]
    other = one(pool, "SELECT id FROM alarms WHERE dispenser_id = 'DSP-2'")["id"]
    return {"nurses": nurses, "alarm": alarm, "other_alarm": other}


def notify(
    pool: ConnectionPool,
    clock: FakeClock,
    alarm_id: int,
    nurse_id: int,
    channel: str,
    sid: str,
    *,
    purpose: str = "alarm",
    language: str = "sv",
    to: str = ANNA,
) -> int:
    """A notification the outbox already handed to Twilio (status 'sent', sid recorded)."""
    now = clock.now()
    return int(
        one(
            pool,
            "INSERT INTO notifications (alarm_id, idempotency_key, purpose, channel, nurse_id,"
            " to_number, language, status, provider_sid, created_at, sent_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 'sent', %s, %s, %s, %s) RETURNING id",
            (alarm_id, f"k-{sid}-{alarm_id}", purpose, channel, nurse_id, to, language, sid)
            + (now, now, now),
        )["id"]
    )


@pytest.fixture
def client(pool: ConnectionPool, clock: FakeClock) -> TestClient:
    return TestClient(create_app(pool, clock, twilio_auth_token=TOKEN, public_url=PUBLIC))


def post(
    client: TestClient,
    path: str,
    form: dict[str, str],
    *,
    signed: dict[str, str] | None = None,
    token: str = TOKEN,
    url: str | None = None,
) -> Any:
    """POST as Twilio does: form-encoded, signed over PUBLIC + path + query and the fields.
    ``signed``/``token``/``url`` forge the signature: over other fields, key, or address."""
    signature = RequestValidator(token).compute_signature(
        url or PUBLIC + path, form if signed is None else signed
    )
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def snapshot(pool: ConnectionPool) -> list[Any]:
    with pool.connection() as conn:
        return [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("alarms", "notifications", "alarm_history")
        ]


def alarm(pool: ConnectionPool, alarm_id: int) -> dict[str, Any]:
    with pool.connection() as conn:
        row = alarm_sql.get_alarm(conn, alarm_id)
    assert row is not None
    return row


def status_of(pool: ConnectionPool, notification_id: int) -> str:
    return str(
        one(pool, "SELECT status FROM notifications WHERE id = %s", (notification_id,))["status"]
    )


def twiml(response: Any) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.text)


# --- signatures --------------------------------------------------------------------------


ROUTES = [
    ("/twilio/sms/status", {"MessageSid": "SM1", "MessageStatus": "failed"}),
    ("/twilio/voice?n=1", {"CallSid": "CA1", "CallStatus": "in-progress"}),
    ("/twilio/voice/details?n=1", {"CallSid": "CA1", "Digits": "1"}),
    ("/twilio/voice/gather?n=1", {"CallSid": "CA1", "Digits": "1"}),
    ("/twilio/voice/status?n=1", {"CallSid": "CA1", "CallStatus": "completed"}),
    ("/twilio/sms/inbound", {"From": ANNA, "Body": "OK 1234"}),
]


@pytest.mark.parametrize(("path", "form"), ROUTES)
@pytest.mark.parametrize("forgery", ["wrong key", "other fields", "other url", "no header"])
def test_a_forged_request_is_refused_and_changes_nothing(
    world: dict[str, Any],
    pool: ConnectionPool,
    clock: FakeClock,
    client: TestClient,
    path: str,
    form: dict[str, str],
    forgery: str,
) -> None:
    notify(pool, clock, world["alarm"], world["nurses"]["Anna"], "sms", "SM1")
    notify(pool, clock, world["alarm"], world["nurses"]["Anna"], "voice", "CA1")
    before = snapshot(pool)
    if forgery == "wrong key":
        answer = post(client, path, form, token="f" * 32)
    elif forgery == "other fields":  # signed for harmless fields, sent with others
        answer = post(client, path, form, signed={**form, "Digits": "", "Body": "hello"})
    elif forgery == "other url":  # a signature lifted from another notification's request
        other = path.replace("n=1", "n=2") if "n=1" in path else path + "?n=2"
        answer = post(client, path, form, url=PUBLIC + other)
    else:
        answer = client.post(path, data=form)
    assert answer.status_code == 403
    assert snapshot(pool) == before


def test_without_twilio_the_routes_do_not_exist_and_half_configured_is_503(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    off = TestClient(create_app(pool, clock))
    assert off.post("/twilio/sms/inbound", data={"From": ANNA}).status_code == 404
    half = TestClient(create_app(pool, clock, twilio_auth_token=TOKEN))
    assert half.post("/twilio/sms/inbound", data={"From": ANNA}).status_code == 503


# --- voice -------------------------------------------------------------------------------


def test_the_call_says_nothing_identifying_before_a_key_and_the_alarm_after(
    world: dict[str, Any], pool: ConnectionPool, clock: FakeClock, client: TestClient
) -> None:
    n = notify(pool, clock, world["alarm"], world["nurses"]["Anna"], "voice", "CA1")
    root = twiml(post(client, f"/twilio/voice?n={n}", {"CallSid": "CA1", "CallStatus": "ringing"}))

    assert root.tag == "Response"
    gather, after = list(root)
    assert gather.tag == "Gather"
    assert gather.attrib["numDigits"] == "1" and gather.attrib["timeout"] == "10"
    assert gather.attrib["action"] == f"{PUBLIC}/twilio/voice/details?n={n}"
    [say] = list(gather)
    assert say.attrib["language"] == "sv-SE"
    assert say.text == "dosewatch-larm. Tryck på valfri knapp."
    assert after.tag == "Say" and "Ingen knapp trycktes" in (after.text or "")

    # The key: now the alarm, and a second Gather whose key acknowledges.
    details = twiml(post(client, f"/twilio/voice/details?n={n}", {"CallSid": "CA1", "Digits": "5"}))
    gather, after = list(details)
    assert gather.attrib["action"] == f"{PUBLIC}/twilio/voice/gather?n={n}"
    [say] = list(gather)
    assert say.text == (
        "Missad dos klockan 08:00 för A.B. nummer 1. Tryck valfri siffra för att kvittera."
    )
    assert after.tag == "Say" and "Ingen knapp trycktes" in (after.text or "")
    assert alarm(pool, world["alarm"])["acknowledged_at"] is None  # only the second key acks


def test_an_english_nurse_hears_english(
    world: dict[str, Any], pool: ConnectionPool, clock: FakeClock, client: TestClient
) -> None:
    n = notify(
        pool,
        clock,
        world["alarm"],
        world["nurses"]["Lars"],
        "voice",
        "CA2",
        language="en",
        to=LARS,
    )
    root = twiml(post(client, f"/twilio/voice?n={n}", {"CallSid": "CA2"}))
    say = root.find("Gather/Say")
    assert say is not None and say.attrib["language"] == "en-GB"
    assert say.text == "dosewatch alarm, press any key."
    root = twiml(post(client, f"/twilio/voice/details?n={n}", {"CallSid": "CA2", "Digits": "1"}))
    say = root.find("Gather/Say")
    assert say is not None and say.attrib["language"] == "en-GB"
    assert "Missed dose at 08:00 for A.B. number 1" in (say.text or "")


def test_a_keypress_acknowledges_the_alarm_as_that_nurse_by_phone(
    world: dict[str, Any], pool: ConnectionPool, clock: FakeClock, client: TestClient
) -> None:
    anna = world["nurses"]["Anna"]
    n = notify(pool, clock, world["alarm"], anna, "voice", "CA1")
    clock.advance(timedelta(minutes=1))
    root = twiml(post(client, f"/twilio/voice/gather?n={n}", {"CallSid": "CA1", "Digits": "7"}))

    assert "Tack. Larmet är kvitterat." in (root.findtext("Say") or "")
    acked = alarm(pool, world["alarm"])
    assert acked["acknowledged_at"] == clock.now()
    assert acked["acknowledged_nurse_id"] == anna and acked["acknowledged_by"] == "Anna"
    assert acked["next_step_at"] is None  # paging stopped
    with pool.connection() as conn:
        history = alarm_sql.history(conn, world["alarm"])
    assert [(h["action"], h["via"]) for h in history][-1] == ("acknowledged", "phone")
    assert status_of(pool, n) == "acknowledged"
    # Twilio's 'completed' report comes after the keypress: it must not undo it.
    post(client, f"/twilio/voice/status?n={n}", {"CallSid": "CA1", "CallStatus": "completed"})
    assert status_of(pool, n) == "acknowledged"
    # ... and a second call about it now says it is handled, with nothing to press.
    n2 = notify(pool, clock, world["alarm"], anna, "voice", "CA9")
    root = twiml(post(client, f"/twilio/voice?n={n2}", {"CallSid": "CA9"}))
    assert root.find("Gather") is None and "redan hanterat" in (root.findtext("Say") or "")


@pytest.mark.parametrize("answered_by", [None, "machine_end_beep", "human"])
def test_a_call_that_ends_without_a_keypress_is_not_an_acknowledgement(
    world: dict[str, Any],
    pool: ConnectionPool,
    clock: FakeClock,
    client: TestClient,
    answered_by: str | None,
) -> None:
    """A voicemail greeting 'answers' the call too: only a pressed key acknowledges."""
    n = notify(pool, clock, world["alarm"], world["nurses"]["Anna"], "voice", "CA1")
    path = f"/twilio/voice/status?n={n}"
    post(client, path, {"CallSid": "CA1", "CallStatus": "in-progress"})
    assert status_of(pool, n) == "answered"
    done = {"CallSid": "CA1", "CallStatus": "completed"}
    if answered_by:
        done["AnsweredBy"] = answered_by
    assert post(client, path, done).status_code == 204

    assert status_of(pool, n) == "no_keypress"
    after = alarm(pool, world["alarm"])
    assert after["acknowledged_at"] is None and after["state"] == "open"
    assert after["next_step_at"] == clock.now() + timedelta(minutes=10)  # escalation goes on


@pytest.mark.parametrize("call_status", ["busy", "no-answer", "failed", "canceled"])
def test_a_call_that_reached_nobody_is_failed(
    world: dict[str, Any],
    pool: ConnectionPool,
    clock: FakeClock,
    client: TestClient,
    call_status: str,
) -> None:
    n = notify(pool, clock, world["alarm"], world["nurses"]["Anna"], "voice", "CA1")
    post(client, f"/twilio/voice/status?n={n}", {"CallSid": "CA1", "CallStatus": call_status})
    assert status_of(pool, n) == "failed"
    assert alarm(pool, world["alarm"])["acknowledged_at"] is None


# --- SMS replies -------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["OK 1234", "ok1234", "Ok  1234", " OK 1234. "])
def test_an_ok_reply_with_the_code_acknowledges_that_alarm(
    world: dict[str, Any],
    pool: ConnectionPool,
    clock: FakeClock,
    client: TestClient,
    body: str,
) -> None:
    anna = world["nurses"]["Anna"]
    notify(pool, clock, world["alarm"], anna, "sms", "SM1")
    notify(pool, clock, world["other_alarm"], anna, "sms", "SM1")  # a bundle of two
    root = twiml(post(client, "/twilio/sms/inbound", {"From": ANNA, "Body": body}))

    assert root.findtext("Message") == "Kvitterat: Missad dos för A.B. #1. Tack."
    acked = alarm(pool, world["alarm"])
    assert acked["acknowledged_nurse_id"] == anna and acked["acknowledged_at"] == clock.now()
    with pool.connection() as conn:
        assert alarm_sql.history(conn, world["alarm"])[-1]["via"] == "sms"
    assert alarm(pool, world["other_alarm"])["acknowledged_at"] is None


def test_a_wrong_code_or_an_ambiguous_bare_ok_acknowledges_nothing(
    world: dict[str, Any], pool: ConnectionPool, clock: FakeClock, client: TestClient
) -> None:
    anna = world["nurses"]["Anna"]
    notify(pool, clock, world["alarm"], anna, "sms", "SM1")
    notify(pool, clock, world["other_alarm"], anna, "sms", "SM1")
    before = snapshot(pool)

    wrong = twiml(post(client, "/twilio/sms/inbound", {"From": ANNA, "Body": "OK 9999"}))
    assert wrong.findtext("Message") == (
        "Inget okvitterat larm med kod 9999 hittades; det kan redan vara kvitterat."
    )
    bare = twiml(post(client, "/twilio/sms/inbound", {"From": ANNA, "Body": "ok"}))
    assert "2 okvitterade larm" in (bare.findtext("Message") or "")
    other = twiml(post(client, "/twilio/sms/inbound", {"From": ANNA, "Body": "on my way"}))
    assert "Svara OK" in (other.findtext("Message") or "")
    assert snapshot(pool) == before


def test_a_bare_ok_acknowledges_when_exactly_one_alarm_is_waiting(
    world: dict[str, Any], pool: ConnectionPool, clock: FakeClock, client: TestClient
) -> None:
    lars = world["nurses"]["Lars"]
    notify(pool, clock, world["other_alarm"], lars, "sms", "SM2", language="en", to=LARS)
    root = twiml(post(client, "/twilio/sms/inbound", {"From": LARS, "Body": "OK"}))
    assert root.findtext("Message") == "Acknowledged: Missed dose for B.E. #2. Thank you."
    assert alarm(pool, world["other_alarm"])["acknowledged_nurse_id"] == lars
    assert alarm(pool, world["alarm"])["acknowledged_at"] is None  # never sent to Lars


def test_an_sms_from_a_stranger_is_answered_politely_and_changes_nothing(
    world: dict[str, Any],
    pool: ConnectionPool,
    clock: FakeClock,
    client: TestClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    notify(pool, clock, world["alarm"], world["nurses"]["Anna"], "sms", "SM1")
    before = snapshot(pool)
    root = twiml(post(client, "/twilio/sms/inbound", {"From": STRANGER, "Body": "OK 1234"}))
    assert "tar inte emot meddelanden" in (root.findtext("Message") or "")
    assert snapshot(pool) == before
    assert any(STRANGER in r.message for r in caplog.records)


# --- SMS delivery reports ----------------------------------------------------------------


def test_delivered_is_recorded(
    world: dict[str, Any], pool: ConnectionPool, clock: FakeClock, client: TestClient
) -> None:
    n = notify(pool, clock, world["alarm"], world["nurses"]["Anna"], "sms", "SM1")
    answer = post(client, "/twilio/sms/status", {"MessageSid": "SM1", "MessageStatus": "delivered"})
    assert answer.status_code == 204
    assert status_of(pool, n) == "delivered"
    assert alarm(pool, world["alarm"])["next_step_at"] == clock.now() + timedelta(minutes=10)


@pytest.mark.parametrize("state", ["failed", "undelivered"])
def test_an_undeliverable_alarm_sms_moves_the_escalation_on_at_once(
    world: dict[str, Any], pool: ConnectionPool, clock: FakeClock, client: TestClient, state: str
) -> None:
    anna = world["nurses"]["Anna"]
    # One bundled SMS carried both alarms; a separate all-clear also failed.
    a = notify(pool, clock, world["alarm"], anna, "sms", "SM1")
    b = notify(pool, clock, world["other_alarm"], anna, "sms", "SM1")
    clock.advance(timedelta(minutes=2))
    form = {"MessageSid": "SM1", "MessageStatus": state, "ErrorCode": "30003"}
    assert post(client, "/twilio/sms/status", form).status_code == 204

    assert status_of(pool, a) == status_of(pool, b) == state
    for alarm_id in (world["alarm"], world["other_alarm"]):
        assert alarm(pool, alarm_id)["next_step_at"] == clock.now()
    assert (
        "30003"
        in one(pool, "SELECT last_error FROM notifications WHERE id = %s", (a,))["last_error"]
    )


def test_a_failed_all_clear_does_not_move_an_escalation(
    world: dict[str, Any], pool: ConnectionPool, clock: FakeClock, client: TestClient
) -> None:
    n = notify(
        pool, clock, world["alarm"], world["nurses"]["Anna"], "sms", "SM3", purpose="all_clear"
    )
    post(client, "/twilio/sms/status", {"MessageSid": "SM3", "MessageStatus": "failed"})
    assert status_of(pool, n) == "failed"
    assert alarm(pool, world["alarm"])["next_step_at"] == clock.now() + timedelta(minutes=10)
