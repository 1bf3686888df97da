"""What a message may say about a patient (domain/disclosure.py) and the texts built on it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboards.pages import local_path
from dosewatch import messages
from dosewatch.domain.disclosure import Detail, Patient, initials, shown_patient

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ASTRID = Patient(17, "Astrid Berg", "Storgatan 1, 903 26 Umeå", "Haga")


BASE = messages.AlarmFacts(
    alarm_id=5,
    kind="missed_dose",
    state="open",
    slot_due_at=datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
    opened_at=datetime(2026, 11, 23, 7, 45, tzinfo=UTC),
    cleared_at=None,
    outcome=None,
    resolved_by=None,
    ack_code="1234",
    patient=ASTRID,
    detail=Detail.MINIMAL,
)


def facts(detail: Detail, **kw: Any) -> messages.AlarmFacts:
    return replace(BASE, detail=detail, **kw)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Astrid Berg", "A.B."),
        ("Anna-Karin von Ek", "A.E."),
        ("Åsa Öberg", "Å.Ö."),
        ("bo", "B."),
        ("  ", "?"),
        ("(123)", "?"),
    ],
)
def test_initials(name: str, expected: str) -> None:
    assert initials(name) == expected


@given(st.lists(st.text(alphabet="abcdefåäöABCDÅÖ", min_size=2, max_size=12), min_size=1))
def test_the_minimal_form_never_spells_out_a_name(words: list[str]) -> None:
    name = " ".join(words)
    shown = shown_patient(Patient(3, name, "Storgatan 1", None), Detail.MINIMAL)
    letters = [c for c in shown.label if c.isalpha()]
    assert len(letters) <= 2 and shown.address is None
    assert all(w not in shown.label for w in words)


def test_the_full_form_adds_name_and_address() -> None:
    shown = shown_patient(ASTRID, Detail.FULL)
    assert (shown.label, shown.address, shown.district) == (
        "Astrid Berg",
        "Storgatan 1, 903 26 Umeå",
        "Haga",
    )


def test_alarm_sms_minimal_and_full() -> None:
    url = "https://dw.example.se/"
    minimal = messages.alarm_sms([facts(Detail.MINIMAL)], "sv", STOCKHOLM, url)
    assert minimal == (
        "dosewatch: Missad dos 08:00, A.B. #17, Haga. Svara OK 1234 för att kvittera."
        " https://dw.example.se/console?alarm=5"
    )
    full = messages.alarm_sms([facts(Detail.FULL)], "en", STOCKHOLM, url)
    assert full.startswith("dosewatch: Missed dose 08:00, Astrid Berg, Storgatan 1, 903 26 Umeå,")


def test_all_clear_and_reminder_follow_the_same_rule() -> None:
    cleared = facts(Detail.MINIMAL, cleared_at=datetime(2026, 11, 23, 8, 7, tzinfo=UTC))
    resolved = facts(Detail.MINIMAL, outcome="home_visit", resolved_by="Anna")
    for text in (
        messages.all_clear_sms(cleared, "sv", STOCKHOLM, "https://x"),
        messages.all_clear_sms(resolved, "en", STOCKHOLM, "https://x"),
        messages.reminder_sms(cleared, "sv", "https://x"),
        messages.sms_acknowledged(cleared, "en"),
    ):
        assert "A.B. #17" in text and "Astrid" not in text and "Storgatan" not in text


def test_the_call_prompt_names_no_one_and_the_details_are_spoken() -> None:
    for lang in ("sv", "en"):
        assert messages.voice_prompt(lang) in (
            "dosewatch-larm. Tryck på valfri knapp.",
            "dosewatch alarm, press any key.",
        )
    assert messages.voice_details(facts(Detail.MINIMAL), "en", STOCKHOLM) == (
        "Missed dose at 08:00 for A.B. number 17, Haga. Press any key to acknowledge."
    )


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/console?alarm=17", "/console?alarm=17"),
        ("/patients/3", "/patients/3"),
        (None, "/"),
        ("", "/"),
        ("console", "/"),
        ("https://evil.example/console", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("/%0a", "/%0a"),  # still encoded: a path, not a newline
        ("javascript:alert(1)", "/"),
    ],
)
def test_sign_in_goes_only_to_a_local_path(target: str | None, expected: str) -> None:
    assert local_path(target) == expected
