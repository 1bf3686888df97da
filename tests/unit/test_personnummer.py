"""Swedish identity numbers: the check digit, both written forms, samordningsnummer, centuries."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dosewatch.domain.personnummer import IdKind, InvalidIdentityNumber, luhn_check_digit, parse

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize(
    ("text", "digits", "kind"),
    [
        ("19121212-1212", "191212121212", IdKind.PERSONNUMMER),  # Skatteverket's example
        ("191212121212", "191212121212", IdKind.PERSONNUMMER),
        ("121212-1212", "201212121212", IdKind.PERSONNUMMER),  # 2012: latest past year
        ("121212+1212", "191212121212", IdKind.PERSONNUMMER),  # '+': a hundred years more
        ("701063-2391", "197010632391", IdKind.SAMORDNINGSNUMMER),  # day 63 = 3rd + 60
        (" 19121212 - 1212 ".replace(" - ", "-"), "191212121212", IdKind.PERSONNUMMER),
    ],
)
def test_written_forms(text: str, digits: str, kind: IdKind) -> None:
    parsed = parse(text, TODAY)
    assert (parsed.digits, parsed.kind) == (digits, kind)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("19121212-1213", "check digit"),
        ("19121312-1212", "check digit"),
        ("19121212-121", "expected"),
        ("abc", "expected"),
        (f"20991231-000{luhn_check_digit('991231000')}", "future"),
        ("19121212+1212", "ten-digit"),
    ],
)
def test_invalid_numbers_say_why(text: str, why: str) -> None:
    with pytest.raises(InvalidIdentityNumber, match=why):
        parse(text, TODAY)


def test_a_two_digit_year_this_year_but_later_in_it_is_last_century() -> None:
    nine = "261231123"
    text = f"{nine[:6]}-{nine[6:]}{luhn_check_digit(nine)}"
    assert parse(text, TODAY).digits.startswith("1926")


@given(
    born=st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    birth=st.integers(0, 999),
    coordination=st.booleans(),
)
def test_every_valid_number_round_trips_and_one_wrong_digit_is_refused(
    born: date, birth: int, coordination: bool
) -> None:
    day = born.day + (60 if coordination else 0)
    nine = f"{born:%y%m}{day:02d}{birth:03d}"
    check = luhn_check_digit(nine)
    text = f"{born.year:04d}{nine[2:6]}-{nine[6:]}{check}"
    parsed = parse(text, TODAY)
    assert parsed.digits == f"{born.year:04d}{nine[2:]}{check}"
    assert parsed.kind is (IdKind.SAMORDNINGSNUMMER if coordination else IdKind.PERSONNUMMER)
    wrong = text[:-1] + str((check + 1) % 10)
    with pytest.raises(InvalidIdentityNumber):
        parse(wrong, TODAY)
    if born > TODAY - timedelta(days=365 * 99):  # the ten-digit form is unambiguous then
        assert parse(text[2:], TODAY).digits == parsed.digits
