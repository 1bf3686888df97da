"""What the SMS and calls say, in Swedish and English (pure).

Shared by the outbox (:mod:`alarms.outbox`, what is sent) and the Twilio webhooks
(:mod:`dashboards.twilio_hooks`, what a call says and what an SMS reply answers), so it lives in
the core. Each text names the patient only through
:func:`dosewatch.domain.disclosure.shown_patient`, at the level the patient's team chose: by
default initials, a short reference and the district, never the full name, address or phone.
Each SMS about an alarm ends with a link that opens that alarm in the console after sign-in,
where the rest is.

A call says only "dosewatch alarm, press any key" (:func:`voice_prompt`) until a key is
pressed: a voicemail that answers records nothing about the patient. The details and the
acknowledgement prompt (:func:`voice_details`) come after the keypress.

A training alarm (training mode, :mod:`dosewatch.domain.training`) says so first, in every text
and call: ``TRÄNING: dosewatch: Missad dos …`` / ``TRAINING: …``, so nobody takes a practice
alarm for a real one, or a real one for practice.

Short enough for one SMS segment where possible: what, when, whom, how to acknowledge. Times
are shown on the patient's wall clock, because that is the time the nurse will talk about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from dosewatch.domain.disclosure import Detail, Patient, Shown, shown_patient


@dataclass(frozen=True)
class AlarmFacts:
    """One alarm as a message may use it: read by :mod:`dosewatch.db.message_facts`."""

    alarm_id: int
    kind: str
    state: str
    slot_due_at: datetime | None
    opened_at: datetime
    cleared_at: datetime | None
    outcome: str | None
    resolved_by: str | None
    ack_code: str | None
    patient: Patient
    detail: Detail  # the patient's team's choice
    training: bool = False  # a training team's alarm

    @property
    def shown(self) -> Shown:
        return shown_patient(self.patient, self.detail)


_KIND = {
    "sv": {
        "missed_dose": "Missad dos",
        "dose_status_unknown": "Okänt om dosen togs (dispensern offline)",
        "dispenser_offline": "Dispensern offline",
        "device_fault": "Fel på dispensern",
        "power_lost": "Strömavbrott",
        "battery_low": "Lågt batteri",
        "temperature": "Temperatur utanför 15–25 °C",
        "refill_needed": "Påfyllning behövs",
        "empty": "Dispensern är tom",
        "help_button": "Patienten har tryckt på hjälpknappen",
        "schedule_not_applied": "Schemat är inte infört i dispensern",
    },
    "en": {
        "missed_dose": "Missed dose",
        "dose_status_unknown": "Dose status unknown (dispenser offline)",
        "dispenser_offline": "Dispenser offline",
        "device_fault": "Dispenser fault",
        "power_lost": "Mains power lost",
        "battery_low": "Battery low",
        "temperature": "Temperature outside 15–25 °C",
        "refill_needed": "Refill needed",
        "empty": "Dispenser empty",
        "help_button": "The patient pressed the help button",
        "schedule_not_applied": "Schedule not applied by the dispenser",
    },
}

_TEXT = {
    "sv": {
        "reply": "Svara OK {code} för att kvittera.",
        "alarms": "{n} larm:",
        "all_clear_cleared": "Klart: {what} för {patient} har löst sig ({at}). Inget mer behövs "
        "just nu; kvittera i konsolen.",
        "all_clear_resolved": "Klart: {what} för {patient} är avslutat av {by}.",
        "reminder": "Påminnelse: {what} för {patient} är kvitterat men inte avslutat.",
        "prompt": "dosewatch-larm. Tryck på valfri knapp.",
        "number": "nummer",
        "details": "{what} klockan {at} för {patient}. Tryck valfri siffra för att kvittera.",
        "acked": "Kvitterat: {what} för {patient}. Tack.",
        "patient_reminder": "Påminnelse från hemtjänsten: det är dags för din medicin i "
        "dispensern.",
    },
    "en": {
        "reply": "Reply OK {code} to acknowledge.",
        "alarms": "{n} alarms:",
        "all_clear_cleared": "All clear: {what} for {patient} has resolved itself ({at}). "
        "Nothing more needed now; acknowledge in the console.",
        "all_clear_resolved": "All clear: {what} for {patient} was resolved by {by}.",
        "reminder": "Reminder: {what} for {patient} is acknowledged but not resolved.",
        "prompt": "dosewatch alarm, press any key.",
        "number": "number",
        "details": "{what} at {at} for {patient}. Press any key to acknowledge.",
        "acked": "Acknowledged: {what} for {patient}. Thank you.",
        "patient_reminder": "Reminder from your home care: it is time for your medicine in "
        "the dispenser.",
    },
}


TRAINING = {"sv": "TRÄNING", "en": "TRAINING"}


def _lang(language: str) -> str:
    return language if language in _TEXT else "sv"


def training_mark(text: str, training: bool, language: str) -> str:
    """``text`` as a training alarm says it: the word first, before anything else."""
    return f"{TRAINING[_lang(language)]}: {text}" if training else text


def kind_text(kind: str, language: str) -> str:
    return _KIND[_lang(language)].get(kind, kind.replace("_", " "))


def alarm_link(console_url: str, alarm_id: int) -> str:
    """Opens this alarm in the console; a signed-out phone signs in first and lands here."""
    return f"{console_url.rstrip('/')}/console?alarm={alarm_id}"


def _clock(at: datetime | None, tz: ZoneInfo) -> str:
    return "" if at is None else at.astimezone(tz).strftime("%H:%M")


def _who(shown: Shown, spoken_in: str | None = None) -> str:
    """The patient as the message names them, with where to go."""
    parts = [shown.label, shown.address, shown.district]
    text = ", ".join(p for p in parts if p)
    # "#17" read aloud would be "hash seventeen": a call says "number 17".
    return text.replace("#", _TEXT[spoken_in]["number"] + " ") if spoken_in else text


def _one_line(f: AlarmFacts, language: str, tz: ZoneInfo) -> str:
    what = kind_text(f.kind, language)
    when = _clock(f.slot_due_at, tz)
    return f"{what} {when}, {_who(f.shown)}".replace(" ,", ",")


def alarm_sms(facts: Sequence[AlarmFacts], language: str, tz: ZoneInfo, console_url: str) -> str:
    """One SMS for one alarm or a bundle of several for the same nurse."""
    lang = _lang(language)
    t = _TEXT[lang]
    training = any(f.training for f in facts)
    if len(facts) == 1:
        f = facts[0]
        reply = t["reply"].format(code=f.ack_code)
        text = f"dosewatch: {_one_line(f, lang, tz)}. {reply} {alarm_link(console_url, f.alarm_id)}"
        return training_mark(text, training, lang)
    # A bundle that mixes the two (it should never happen) marks each training line too.
    mixed = training and not all(f.training for f in facts)
    lines = [
        training_mark(
            f"- {_one_line(f, lang, tz)} (OK {f.ack_code}) {alarm_link(console_url, f.alarm_id)}",
            mixed and f.training,
            lang,
        )
        for f in facts
    ]
    reply = t["reply"].format(code="<kod>" if lang == "sv" else "<code>")
    head = training_mark(f"dosewatch: {t['alarms'].format(n=len(facts))}", training, lang)
    return "\n".join([head, *lines, reply])


def all_clear_sms(f: AlarmFacts, language: str, tz: ZoneInfo, console_url: str) -> str:
    lang = _lang(language)
    what = kind_text(f.kind, lang)
    who = _who(f.shown)
    if f.outcome:
        text = _TEXT[lang]["all_clear_resolved"].format(
            what=what, patient=who, by=f.resolved_by or "?"
        )
    else:
        text = _TEXT[lang]["all_clear_cleared"].format(
            what=what, patient=who, at=_clock(f.cleared_at, tz)
        )
    return training_mark(
        f"dosewatch: {text} {alarm_link(console_url, f.alarm_id)}", f.training, lang
    )


def reminder_sms(f: AlarmFacts, language: str, console_url: str) -> str:
    lang = _lang(language)
    text = _TEXT[lang]["reminder"].format(what=kind_text(f.kind, lang), patient=_who(f.shown))
    return training_mark(
        f"dosewatch: {text} {alarm_link(console_url, f.alarm_id)}", f.training, lang
    )


def patient_reminder_sms(language: str) -> str:
    """To the patient or a relative (the ``patient_contact`` step). What is consented to is a
    reminder to this number, nothing more: so no alarm kind, dose time, dose label or
    medication name, and no name either (a relative's phone may be shared)."""
    return _TEXT[_lang(language)]["patient_reminder"]


def voice_prompt(language: str, training: bool = False) -> str:
    """All a call says before a key is pressed: nothing a voicemail could keep about anyone."""
    return training_mark(_TEXT[_lang(language)]["prompt"], training, language)


def voice_details(f: AlarmFacts, language: str, tz: ZoneInfo) -> str:
    """What the call says once a key was pressed, with the acknowledgement prompt."""
    lang = _lang(language)
    text = _TEXT[lang]["details"].format(
        what=kind_text(f.kind, lang),
        at=_clock(f.slot_due_at or f.opened_at, tz),
        patient=_who(f.shown, spoken_in=lang),
    )
    return training_mark(text, f.training, lang)


def sms_acknowledged(f: AlarmFacts, language: str) -> str:
    """The answer to an ``OK <code>`` reply: it lands on the same phone, so the same rule."""
    lang = _lang(language)
    text = _TEXT[lang]["acked"].format(what=kind_text(f.kind, lang), patient=_who(f.shown))
    return training_mark(text, f.training, lang)


def with_ref(body: str, ref: str) -> str:
    """The provider-side tag that lets a restarted dispatcher find a send it did not record."""
    return f"{body}\n[{ref}]"
