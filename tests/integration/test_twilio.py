"""TwilioNotifier, with the real ``twilio`` client, against the local Twilio stand-in."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from alarms.notifier import NotificationError, Outgoing
from alarms.twilio_notifier import TwilioNotifier, notifier_from_settings
from dosewatch.clock import FakeClock
from dosewatch.config import ConfigError, load_settings
from dosewatch.domain.escalation import Channel
from dosewatch.domain.retry import is_permanent
from tests.twilio_standin import TwilioStandIn

FROM = "+46101234567"
PUBLIC = "https://dosewatch.example.org"
ANNA = "+46701111111"


def sms(n: int, to: str = ANNA) -> Outgoing:
    return Outgoing(
        Channel.SMS, to, f"dosewatch: Missad dos 08:00 Astrid Berg.\n[n{n}]", (n,), f"n{n}"
    )


def call(n: int, to: str = ANNA) -> Outgoing:
    return Outgoing(Channel.VOICE, to, "Detta är dosewatch.", (n,), f"n{n}")


@pytest.fixture
def standin(clock: FakeClock) -> Iterator[TwilioStandIn]:
    with TwilioStandIn(clock=clock.now) as s:
        yield s


@pytest.fixture
def notifier(standin: TwilioStandIn) -> TwilioNotifier:
    return TwilioNotifier(standin.account_sid, standin.auth_token, FROM, PUBLIC, standin.url)


def test_sms_arrives_as_twilio_would_receive_it(
    standin: TwilioStandIn, notifier: TwilioNotifier
) -> None:
    sid = notifier.send(sms(7))

    assert sid.startswith("SM") and len(sid) == 34
    [req] = standin.requests
    assert req["method"] == "POST"
    assert req["path"] == f"/2010-04-01/Accounts/{standin.account_sid}/Messages.json"
    [sent] = standin.sms
    assert sent == {
        "To": ANNA,
        "From": FROM,
        "Body": "dosewatch: Missad dos 08:00 Astrid Berg.\n[n7]",
        "StatusCallback": f"{PUBLIC}/twilio/sms/status",
        "sid": sid,
    }


def test_call_points_twilio_at_our_twiml_and_status_webhooks(
    standin: TwilioStandIn, notifier: TwilioNotifier
) -> None:
    sid = notifier.send(Outgoing(Channel.VOICE, ANNA, "…", (12, 13), "n12"))

    assert sid.startswith("CA")
    assert standin.requests[0]["path"].endswith("/Calls.json")
    [placed] = standin.calls
    assert placed["To"] == ANNA and placed["From"] == FROM
    assert placed["Url"] == f"{PUBLIC}/twilio/voice?n=12"
    assert placed["StatusCallback"] == f"{PUBLIC}/twilio/voice/status?n=12"
    assert placed["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]


def test_wrong_credentials_are_refused_and_permanent(standin: TwilioStandIn) -> None:
    wrong = TwilioNotifier(standin.account_sid, "not-the-token", FROM, PUBLIC, standin.url)
    with pytest.raises(NotificationError) as err:
        wrong.send(sms(1))
    assert (err.value.failure.status, err.value.failure.code) == (401, 20003)
    assert is_permanent(err.value.failure)
    assert standin.sms == []


@pytest.mark.parametrize("number", ["+46700000000", "070-111 11 11"])
def test_invalid_number_is_a_permanent_failure(
    standin: TwilioStandIn, notifier: TwilioNotifier, number: str
) -> None:
    """A number Twilio calls invalid (well-formed or not) is code 21211: never retried."""
    standin.invalid_numbers.add("+46700000000")
    for out in (sms(1, to=number), call(2, to=number)):
        with pytest.raises(NotificationError) as err:
            notifier.send(out)
        failure = err.value.failure
        assert (failure.status, failure.code) == (400, 21211)
        assert number in failure.message
        assert is_permanent(failure)
    assert standin.sms == [] and standin.calls == []


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_and_rate_limits_are_transient(
    standin: TwilioStandIn, notifier: TwilioNotifier, status: int
) -> None:
    standin.fail_next(status)
    with pytest.raises(NotificationError) as err:
        notifier.send(sms(1))
    assert err.value.failure.status == status
    assert not is_permanent(err.value.failure)
    # The next try goes through: nothing about the message itself was wrong.
    assert notifier.send(sms(1)).startswith("SM")
    assert len(standin.sms) == 1


def test_no_answer_at_all_is_a_transient_failure_without_status(
    standin: TwilioStandIn, notifier: TwilioNotifier
) -> None:
    standin.drop_next()
    with pytest.raises(NotificationError) as err:
        notifier.send(call(1))
    assert err.value.failure.status is None and err.value.failure.code is None
    assert err.value.failure.message
    assert not is_permanent(err.value.failure)


def test_find_sent_sms_matches_the_ref_as_a_whole_token(
    standin: TwilioStandIn, notifier: TwilioNotifier, clock: FakeClock
) -> None:
    since = clock.now()
    clock.advance(timedelta(seconds=5))
    sid_12 = notifier.send(sms(12))
    sid_123 = notifier.send(sms(123))
    other = notifier.send(sms(5, to="+46702222222"))

    assert notifier.find_sent(sms(12), since) == sid_12
    assert notifier.find_sent(sms(123), since) == sid_123
    assert notifier.find_sent(sms(1), since) is None  # "n1" is in neither tag as a token
    assert notifier.find_sent(sms(5), since) is None  # sent, but to another number
    assert notifier.find_sent(sms(5, to="+46702222222"), since) == other
    # Only sends since `since` count: an older message with the same ref is not this one.
    assert notifier.find_sent(sms(12), clock.now() + timedelta(minutes=1)) is None
    [lookup, *_] = [r for r in standin.requests if r["method"] == "GET"]
    assert "DateSent%3E=" in lookup["query"] and "To=%2B46701111111" in lookup["query"]


def test_find_sent_passes_the_instant_in_utc_whatever_the_zone(
    notifier: TwilioNotifier, clock: FakeClock
) -> None:
    """06:49 UTC given as 07:49 Stockholm must not be read as 07:49 UTC (after the send)."""
    since = (clock.now() - timedelta(minutes=1)).astimezone(ZoneInfo("Europe/Stockholm"))
    sid = notifier.send(sms(3))
    assert notifier.find_sent(sms(3), since) == sid


def test_find_sent_call_takes_the_earliest_call_to_that_number_since(
    notifier: TwilioNotifier, clock: FakeClock
) -> None:
    since = clock.now()
    assert notifier.find_sent(call(40), since) is None
    clock.advance(timedelta(seconds=2))
    first = notifier.send(call(40))
    clock.advance(timedelta(seconds=30))
    notifier.send(call(41))  # a later row's call to the same nurse
    notifier.send(call(42, to="+46702222222"))

    assert notifier.find_sent(call(40), since) == first
    assert notifier.find_sent(call(40), clock.now() + timedelta(seconds=1)) is None


def test_find_sent_reports_provider_failures_as_notification_errors(
    standin: TwilioStandIn, notifier: TwilioNotifier, clock: FakeClock
) -> None:
    wrong = TwilioNotifier(standin.account_sid, "nope", FROM, PUBLIC, standin.url)
    with pytest.raises(NotificationError) as err:
        wrong.find_sent(sms(1), clock.now())
    assert err.value.failure.status == 401


def test_settings_without_twilio_mean_console_only_with_a_loud_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for var in ("ACCOUNT_SID", "AUTH_TOKEN", "FROM", "API_URL"):
        monkeypatch.delenv(f"DOSEWATCH_TWILIO_{var}", raising=False)
    monkeypatch.delenv("DOSEWATCH_PUBLIC_URL", raising=False)
    with caplog.at_level(logging.WARNING, logger="alarms.twilio_notifier"):
        assert notifier_from_settings(load_settings()) is None
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "SMS and voice calls are OFF" in record.message


def test_half_configured_twilio_is_a_start_up_error_naming_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DOSEWATCH_PUBLIC_URL", raising=False)
    settings = load_settings(twilio_account_sid="AC1", twilio_auth_token="secret")
    with pytest.raises(ConfigError) as err:
        notifier_from_settings(settings)
    assert str(err.value).startswith("DOSEWATCH_TWILIO_FROM, DOSEWATCH_PUBLIC_URL: required")


def test_configured_settings_build_a_notifier_that_sends_through_the_api_url(
    standin: TwilioStandIn,
) -> None:
    settings = load_settings(
        twilio_account_sid=standin.account_sid,
        twilio_auth_token=standin.auth_token,
        twilio_from=FROM,
        public_url=PUBLIC + "/",
        twilio_api_url=standin.url,
    )
    assert standin.auth_token not in repr(settings)  # the token is a secret
    notifier = notifier_from_settings(settings)
    assert notifier is not None and notifier.name == "twilio"
    notifier.send(sms(9))
    assert standin.sms[0]["StatusCallback"] == f"{PUBLIC}/twilio/sms/status"


def test_the_standin_refuses_what_twilio_refuses(standin: TwilioStandIn) -> None:
    """A relative callback URL or a non-E.164 sender fails here as it would at Twilio."""
    sid, token = standin.account_sid, standin.auth_token
    relative = TwilioNotifier(sid, token, FROM, "dosewatch.local", standin.url)
    with pytest.raises(NotificationError) as err:
        relative.send(sms(1))
    assert (err.value.failure.status, err.value.failure.code) == (400, 21609)
    bad_from = TwilioNotifier(sid, token, "dosewatch", PUBLIC, standin.url)
    with pytest.raises(NotificationError) as err:
        bad_from.send(call(1))
    assert err.value.failure.code == 21212
    assert standin.sms == [] and standin.calls == []
