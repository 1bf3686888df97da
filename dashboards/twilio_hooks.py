"""Twilio's webhooks: delivery reports, the call's script, key presses, and SMS replies.

Every request must carry a valid ``X-Twilio-Signature`` over ``public_url + path + query`` and
the form fields, or it is answered 403 before anything is read from or written to the
database: these routes acknowledge alarms, so a forged request must not be able to silence one.
``public_url`` is the address Twilio was given (behind a proxy, the server's own view of the
URL differs from what Twilio signed). Without Twilio configured the routes answer 404; with it
half configured, 503.

What the nurse hears is built when the call is answered, from the alarm as it is then (by
notification id, ``?n=``), so a call answered after the alarm was handled says so. A call comes
in two steps, so that a voicemail keeps nothing about a patient:

1. ``/twilio/voice``: "dosewatch alarm, press any key", inside a Gather. A voicemail greeting
   presses nothing: the Gather times out, the call ends with nothing said about anyone, and the
   status callback records ``no_keypress`` (not acknowledged: the escalation goes on).
2. ``/twilio/voice/details``, after that key: the alarm (at the team's level of detail, see
   :mod:`dosewatch.domain.disclosure`) and the acknowledgement prompt, inside a second Gather
   whose key press (``/twilio/voice/gather``) acknowledges.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at
# run time, and ``Signed`` is local to twilio_router (a string annotation could not find it).
import logging
import re
from typing import Annotated
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from dashboards.deps import Db, Now
from dashboards.fields import Id
from dosewatch import messages
from dosewatch.db import DbConn, message_facts
from dosewatch.db import escalation as escalation_sql
from dosewatch.db import notifications as outbox_sql
from dosewatch.usecases import alarm_actions

log = logging.getLogger(__name__)
Form = ImmutableMultiDict[str, str]

VOICE = {"sv": "sv-SE", "en": "en-GB"}
TEXT = {
    "sv": {
        "no_key": "Ingen knapp trycktes. Larmet är inte kvitterat.",
        "thanks": "Tack. Larmet är kvitterat.",
        "already": "Larmet är redan hanterat. Tack.",
        "unknown_call": "Detta är dosewatch. Larmet finns inte längre.",
        "none": "Inget okvitterat larm{code} hittades; det kan redan vara kvitterat.",
        "many": "Du har {n} okvitterade larm. Svara OK följt av koden i larmets SMS.",
        "help": "Svara OK följt av koden i larmets SMS för att kvittera.",
        "stranger": "Detta nummer tar inte emot meddelanden.",
    },
    "en": {
        "no_key": "No key was pressed. The alarm is not acknowledged.",
        "thanks": "Thank you. The alarm is acknowledged.",
        "already": "This alarm has already been handled. Thank you.",
        "unknown_call": "This is dosewatch. The alarm no longer exists.",
        "none": "No unacknowledged alarm{code} found; it may already be acknowledged.",
        "many": "You have {n} unacknowledged alarms. Reply OK and the code from the alarm SMS.",
        "help": "Reply OK and the code from the alarm SMS to acknowledge.",
        "stranger": "This number does not take messages.",
    },
}
# "OK", "ok1234", "Ok  1234", "OK 1234." (phones add punctuation): the code is optional.
REPLY = re.compile(r"^\s*ok\s*(\d+)?\s*[.!]?\s*$", re.IGNORECASE)
# Twilio answers these opt-out/help keywords itself; a reply of ours would only be refused.
KEYWORDS = {
    *("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
    *("START", "YES", "UNSTOP", "HELP", "INFO"),
}
SMS_FAILED = ("failed", "undelivered")
CALL_FAILED = ("busy", "no-answer", "failed", "canceled")
# How long each Gather waits for a key: a voicemail greeting runs out this clock.
GATHER_TIMEOUT_S = 10
# Voice outcomes that a late or repeated status callback must not overwrite.
CALL_FINAL = ("acknowledged", "no_keypress", "failed", "cancelled")


def _t(language: str | None) -> dict[str, str]:
    return TEXT.get(language or "sv", TEXT["sv"])


def _with_code(code: str | None, language: str) -> str:
    if not code:
        return ""
    return f" with code {code}" if language == "en" else f" med kod {code}"


def _twiml(body: object) -> Response:
    return Response(str(body), media_type="application/xml")


def twilio_router(auth_token: str | None, public_url: str | None) -> APIRouter:
    validator = RequestValidator(auth_token) if auth_token else None
    base = public_url.rstrip("/") if public_url else None

    async def signed_form(request: Request) -> Form:
        """The form fields of a request Twilio signed; 403 for anything else."""
        if validator is None and base is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Twilio is not configured")
        if validator is None or base is None:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "Twilio is half configured: need DOSEWATCH_TWILIO_AUTH_TOKEN and PUBLIC_URL",
            )
        form: Form = ImmutableMultiDict(
            parse_qsl((await request.body()).decode(), keep_blank_values=True)
        )
        url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        signature = request.headers.get("X-Twilio-Signature", "")
        # The auth token signs with HMAC-SHA1, the library's default. (A webhook signed with a
        # separate SharedKey would need that key, which dosewatch does not have: it is refused.)
        if not signature or not validator.validate(url, form, signature):
            log.warning("refused a Twilio webhook with a bad signature: %s", request.url.path)
            raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid X-Twilio-Signature")
        return form

    Signed = Annotated[Form, Depends(signed_form)]
    router = APIRouter(prefix="/twilio", include_in_schema=False)

    @router.post("/sms/status")
    def sms_status(form: Signed, conn: Db, clk: Now) -> Response:
        sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "")
        now = clk.now()
        rows = outbox_sql.by_provider_sid(conn, sid)
        if not rows:
            # Possible when the report beats the outbox recording the sid; nothing to update.
            log.info("SMS status %s for unknown sid %s", state, sid)
        elif state == "delivered":
            outbox_sql.set_status(conn, [r["id"] for r in rows], "delivered", now)
        elif state in SMS_FAILED:
            error = f"twilio {state}, error {form.get('ErrorCode') or '?'}"
            changed = outbox_sql.set_status(conn, [r["id"] for r in rows], state, now, error)
            # Nobody will read a message that was never delivered: page the next step now.
            for alarm_id in sorted({r["alarm_id"] for r in changed if r["purpose"] == "alarm"}):
                escalation_sql.advance_now(conn, alarm_id, now)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post("/voice")
    def voice(n: Id, form: Signed, conn: Db) -> Response:
        """Step 1: nothing about the patient until someone presses a key."""
        twiml = VoiceResponse()
        call = _call(conn, n)
        if call is None:
            twiml.say(_t("sv")["unknown_call"], language=VOICE["sv"])
            return _twiml(twiml)
        lang, facts = call
        if facts.state != "open":  # acknowledged, cleared or resolved while it rang
            twiml.say(_t(lang)["already"], language=VOICE[lang])
            return _twiml(twiml)
        gather = twiml.gather(
            num_digits=1,
            action=f"{base}/twilio/voice/details?n={n}",
            timeout=GATHER_TIMEOUT_S,
            method="POST",
        )
        gather.say(messages.voice_prompt(lang, facts.training), language=VOICE[lang])
        # Reached only when the Gather times out (a voicemail, or nobody there): the call
        # ends; the status callback records 'no_keypress' and the escalation goes on.
        twiml.say(_t(lang)["no_key"], language=VOICE[lang])
        return _twiml(twiml)

    @router.post("/voice/details")
    def voice_details(n: Id, form: Signed, conn: Db, request: Request) -> Response:
        """Step 2, after a key: the alarm, then a key to acknowledge it."""
        twiml = VoiceResponse()
        call = _call(conn, n)
        if call is None:
            twiml.say(_t("sv")["unknown_call"], language=VOICE["sv"])
            return _twiml(twiml)
        lang, facts = call
        if not form.get("Digits"):
            # Twilio comes here without a key only if asked to (actionOnEmptyResult): whoever
            # or whatever answered pressed nothing, so it hears nothing about the patient.
            twiml.say(_t(lang)["no_key"], language=VOICE[lang])
        elif facts.state != "open":
            twiml.say(_t(lang)["already"], language=VOICE[lang])
        else:
            tz = ZoneInfo(request.app.state.default_timezone)
            gather = twiml.gather(
                num_digits=1,
                action=f"{base}/twilio/voice/gather?n={n}",
                timeout=GATHER_TIMEOUT_S,
                method="POST",
            )
            gather.say(messages.voice_details(facts, lang, tz), language=VOICE[lang])
            twiml.say(_t(lang)["no_key"], language=VOICE[lang])
        return _twiml(twiml)

    @router.post("/voice/gather")
    def voice_gather(n: Id, form: Signed, conn: Db, clk: Now) -> Response:
        twiml = VoiceResponse()
        note = outbox_sql.get(conn, n)
        lang = note["language"] if note and note["language"] in VOICE else "sv"
        if note is None:
            twiml.say(_t(lang)["unknown_call"], language=VOICE[lang])
        elif not form.get("Digits"):
            twiml.say(_t(lang)["no_key"], language=VOICE[lang])
        else:
            now = clk.now()
            nurse = escalation_sql.nurse(conn, note["nurse_id"]) if note["nurse_id"] else None
            actor = nurse["name"] if nurse else (note["to_number"] or "phone")
            alarm = alarm_actions.acknowledge(
                conn, note["alarm_id"], now, actor, "phone", nurse_id=note["nurse_id"]
            )
            outbox_sql.set_status(conn, [n], "acknowledged", now)
            said = "thanks" if alarm is not None else "already"
            twiml.say(_t(lang)[said], language=VOICE[lang])
        return _twiml(twiml)

    @router.post("/voice/status")
    def voice_status(n: Id, form: Signed, conn: Db, clk: Now) -> Response:
        state = form.get("CallStatus", "")
        note = outbox_sql.get(conn, n)
        if note is None or note["status"] in CALL_FINAL:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        now = clk.now()
        if state == "in-progress":
            outbox_sql.set_status(conn, [n], "answered", now)
        elif state == "completed":
            # A keypress would have set 'acknowledged' (final, above). Whoever or whatever
            # answered — a voicemail greeting too (AnsweredBy machine_*) — pressed nothing.
            error = f"answered by {form['AnsweredBy']}" if form.get("AnsweredBy") else None
            outbox_sql.set_status(conn, [n], "no_keypress", now, error)
        elif state in CALL_FAILED:
            outbox_sql.set_status(conn, [n], "failed", now, f"call {state}")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post("/sms/inbound")
    def sms_inbound(form: Signed, conn: Db, clk: Now) -> Response:
        sender, body = form.get("From", ""), form.get("Body", "")
        twiml = MessagingResponse()
        nurses = escalation_sql.nurse_by_phone(conn, sender)
        if not nurses:
            log.warning("SMS from %s, who is no active nurse, ignored: %r", sender, body[:40])
            twiml.message(TEXT["sv"]["stranger"] + " / " + TEXT["en"]["stranger"])
            return _twiml(twiml)
        text = _t(nurses[0]["language"])
        if body.strip().upper() in KEYWORDS:
            return _twiml(twiml)
        match = REPLY.match(body)
        if match is None:
            twiml.message(text["help"])
            return _twiml(twiml)
        code = match.group(1)
        # One phone may belong to several nurse rows (one per team): look through all of them.
        found = [
            (nurse, row["id"])
            for nurse in nurses
            for row in escalation_sql.alarm_for_reply(conn, nurse["id"], code)
        ]
        alarm_ids = {alarm_id for _, alarm_id in found}
        if not alarm_ids:
            twiml.message(text["none"].format(code=_with_code(code, nurses[0]["language"])))
        elif len(alarm_ids) > 1:
            # A bare OK with several alarms open would be a guess about which one is meant.
            twiml.message(text["many"].format(n=len(alarm_ids)))
        else:
            nurse, alarm_id = found[0]
            alarm = alarm_actions.acknowledge(
                conn, alarm_id, clk.now(), nurse["name"], "sms", nurse["id"]
            )
            facts = message_facts.for_alarm(conn, alarm_id) if alarm is not None else None
            if facts is None:  # resolved between the lookup and now
                twiml.message(text["none"].format(code=_with_code(code, nurses[0]["language"])))
            else:
                twiml.message(messages.sms_acknowledged(facts, nurse["language"]))
        return _twiml(twiml)

    return router


def _call(conn: DbConn, notification_id: int) -> tuple[str, messages.AlarmFacts] | None:
    """The call's language and its alarm as it is now, or ``None`` for an unknown call."""
    note = outbox_sql.get(conn, notification_id)
    facts = message_facts.for_notifications(conn, [notification_id]).get(notification_id)
    if note is None or facts is None:
        return None
    return (note["language"] if note["language"] in VOICE else "sv"), facts
