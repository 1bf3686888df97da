"""Twilio's webhooks: delivery reports, the call's script, key presses, and SMS replies.

Every request must carry a valid ``X-Twilio-Signature`` over ``public_url + path + query`` and
the form fields, or it is answered 403 before anything is read from or written to the
database: these routes acknowledge alarms, so a forged request must not be able to silence one.
``public_url`` is the address Twilio was given (behind a proxy, the server's own view of the
URL differs from what Twilio signed). Without Twilio configured the routes answer 404; with it
half configured, 503.

What the nurse hears is built when the call is answered, from the alarm as it is then (by
notification id, ``?n=``), so a call answered after the alarm was handled says so.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at
# run time, and ``Signed`` is local to twilio_router (a string annotation could not find it).
import logging
import re
from typing import Annotated, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from alarms import messages
from dashboards.deps import Db, Now
from dosewatch.db import DbConn, registry
from dosewatch.db import alarms as alarm_sql
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
        "acked": "Kvitterat: {what} för {patient}. Tack.",
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
        "acked": "Acknowledged: {what} for {patient}. Thank you.",
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
    def voice(n: int, form: Signed, conn: Db, request: Request) -> Response:
        twiml = VoiceResponse()
        row = _call_context(conn, n)
        if row is None:
            twiml.say(_t("sv")["unknown_call"], language=VOICE["sv"])
            return _twiml(twiml)
        lang = row["language"] if row["language"] in VOICE else "sv"
        if row["state"] != "open":  # acknowledged, cleared or resolved while it rang
            twiml.say(_t(lang)["already"], language=VOICE[lang])
            return _twiml(twiml)
        tz = ZoneInfo(request.app.state.default_timezone)
        gather = twiml.gather(
            num_digits=1, action=f"{base}/twilio/voice/gather?n={n}", timeout=10, method="POST"
        )
        gather.say(messages.voice_script(row, lang, tz), language=VOICE[lang])
        # Reached only when the Gather times out: the call ends; the status callback records
        # 'no_keypress' and the escalation goes on.
        twiml.say(_t(lang)["no_key"], language=VOICE[lang])
        return _twiml(twiml)

    @router.post("/voice/gather")
    def voice_gather(n: int, form: Signed, conn: Db, clk: Now) -> Response:
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
    def voice_status(n: int, form: Signed, conn: Db, clk: Now) -> Response:
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
            if alarm is None:  # resolved between the lookup and now
                twiml.message(text["none"].format(code=_with_code(code, nurses[0]["language"])))
            else:
                patient = registry.get_patient(conn, alarm["patient_id"])
                what = messages.kind_text(alarm["kind"], nurse["language"])
                name = patient["name"] if patient else "?"
                twiml.message(text["acked"].format(what=what, patient=name))
        return _twiml(twiml)

    return router


def _call_context(conn: DbConn, notification_id: int) -> dict[str, Any] | None:
    """What the call reads out (alarm, patient, due time) and the alarm's state now."""
    rows = outbox_sql.context(conn, [notification_id])
    if not rows:
        return None
    alarm = alarm_sql.get_alarm(conn, rows[0]["alarm_id"])
    return {**rows[0], "state": alarm["state"] if alarm else "resolved"}
