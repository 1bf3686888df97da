"""What the SMS and calls say, in Swedish and English (pure).

Short enough for one SMS segment where possible: who, what, when, and how to acknowledge. Times
are shown on the patient's wall clock, because that is the time the nurse will talk about.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

Row = dict[str, Any]

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
        "voice": "Detta är dosewatch. {what} klockan {at} för {patient}. "
        "Tryck valfri siffra för att kvittera.",
        "at": "kl {at}",
    },
    "en": {
        "reply": "Reply OK {code} to acknowledge.",
        "alarms": "{n} alarms:",
        "all_clear_cleared": "All clear: {what} for {patient} has resolved itself ({at}). "
        "Nothing more needed now; acknowledge in the console.",
        "all_clear_resolved": "All clear: {what} for {patient} was resolved by {by}.",
        "reminder": "Reminder: {what} for {patient} is acknowledged but not resolved.",
        "voice": "This is dosewatch. {what} at {at} for {patient}. Press any key to acknowledge.",
        "at": "at {at}",
    },
}


def _lang(language: str) -> str:
    return language if language in _TEXT else "sv"


def kind_text(kind: str, language: str) -> str:
    return _KIND[_lang(language)].get(kind, kind.replace("_", " "))


def _clock(at: datetime | None, tz: ZoneInfo) -> str:
    return "" if at is None else at.astimezone(tz).strftime("%H:%M")


def _one_line(row: Row, language: str, tz: ZoneInfo) -> str:
    what = kind_text(row["kind"], language)
    when = _clock(row["slot_due_at"], tz)
    where = f" ({row['patient_address']})" if row.get("patient_address") else ""
    return f"{what} {when} {row['patient_name']}{where}".replace("  ", " ")


def alarm_sms(rows: Sequence[Row], language: str, tz: ZoneInfo) -> str:
    """One SMS for one alarm or a bundle of several for the same nurse."""
    lang = _lang(language)
    t = _TEXT[lang]
    if len(rows) == 1:
        row = rows[0]
        return f"dosewatch: {_one_line(row, lang, tz)}. {t['reply'].format(code=row['ack_code'])}"
    lines = [f"- {_one_line(r, lang, tz)} (OK {r['ack_code']})" for r in rows]
    reply = t["reply"].format(code="<kod>" if lang == "sv" else "<code>")
    return "\n".join([f"dosewatch: {t['alarms'].format(n=len(rows))}", *lines, reply])


def all_clear_sms(row: Row, language: str, tz: ZoneInfo) -> str:
    lang = _lang(language)
    what = kind_text(row["kind"], lang)
    if row.get("outcome"):
        text = _TEXT[lang]["all_clear_resolved"].format(
            what=what, patient=row["patient_name"], by=row.get("resolved_by") or "?"
        )
    else:
        text = _TEXT[lang]["all_clear_cleared"].format(
            what=what, patient=row["patient_name"], at=_clock(row.get("cleared_at"), tz)
        )
    return f"dosewatch: {text}"


def reminder_sms(row: Row, language: str) -> str:
    lang = _lang(language)
    what = kind_text(row["kind"], lang)
    return "dosewatch: " + _TEXT[lang]["reminder"].format(what=what, patient=row["patient_name"])


def voice_script(row: Row, language: str, tz: ZoneInfo) -> str:
    lang = _lang(language)
    return _TEXT[lang]["voice"].format(
        what=kind_text(row["kind"], lang),
        at=_clock(row["slot_due_at"] or row["opened_at"], tz),
        patient=row["patient_name"],
    )


def with_ref(body: str, ref: str) -> str:
    """The provider-side tag that lets a restarted dispatcher find a send it did not record."""
    return f"{body}\n[{ref}]"
