"""Swedish personal identity numbers: personnummer and samordningsnummer (pure).

A personnummer is the birth date (YYMMDD, or YYYYMMDD), a three-digit birth number and a check
digit computed with the Luhn algorithm over the ten digits YYMMDDNNN. A samordningsnummer
(co-ordination number, for people not registered in Sweden) is the same with 60 added to the
day. Written forms vary: ``19121212-1212``, ``191212121212``, ``121212-1212``, and ``+`` in
place of ``-`` for people aged 100 or more in the ten-digit form.

The number is stored in the twelve-digit form, because the ten-digit form is ambiguous about
the century and the FHIR identifier must be unique. HL7 Sweden names the identifier systems by
OID (see :data:`SYSTEMS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class IdKind(StrEnum):
    PERSONNUMMER = "personnummer"
    SAMORDNINGSNUMMER = "samordningsnummer"


# The identifier systems HL7 Sweden's base profiles use for the two kinds of number.
SYSTEMS = {
    IdKind.PERSONNUMMER: "urn:oid:1.2.752.129.2.1.3.1",
    IdKind.SAMORDNINGSNUMMER: "urn:oid:1.2.752.129.2.1.3.3",
}

_FORM = re.compile(r"^(\d{2})?(\d{2})(\d{2})(\d{2})([-+]?)(\d{3})(\d)$")


class InvalidIdentityNumber(ValueError):
    """The text is not a valid personnummer or samordningsnummer; the message says why."""


@dataclass(frozen=True)
class IdentityNumber:
    digits: str  # twelve digits, YYYYMMDDNNNC
    kind: IdKind

    @property
    def system(self) -> str:
        return SYSTEMS[self.kind]

    @property
    def display(self) -> str:
        """The usual written form, ``YYYYMMDD-NNNC``."""
        return f"{self.digits[:8]}-{self.digits[8:]}"


def luhn_check_digit(nine: str) -> int:
    total = 0
    for i, ch in enumerate(nine):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10


def parse(text: str, today: date) -> IdentityNumber:
    """Validate and normalise ``text``; ``today`` decides the century of a ten-digit form."""
    cleaned = text.strip().replace(" ", "")
    match = _FORM.match(cleaned)
    if not match:
        raise InvalidIdentityNumber("expected YYYYMMDD-NNNC or YYMMDD-NNNC")
    century, yy, mm, dd, sep, birth, check = match.groups()
    if century is not None and sep == "+":
        raise InvalidIdentityNumber("'+' is only used in the ten-digit form")
    if luhn_check_digit(yy + mm + dd + birth) != int(check):
        raise InvalidIdentityNumber("the check digit does not match")
    day = int(dd)
    kind = IdKind.PERSONNUMMER
    if day > 60:
        kind, day = IdKind.SAMORDNINGSNUMMER, day - 60
    if century is None:
        # The latest year ending in yy whose date is not after today; '+' means 100 years more.
        year = today.year - (today.year - int(yy)) % 100
        if _date(year, int(mm), day) > today:
            year -= 100
        if sep == "+":
            year -= 100
    else:
        year = int(century + yy)
    if _date(year, int(mm), day) > today:
        raise InvalidIdentityNumber("the date part lies in the future")
    return IdentityNumber(f"{year:04d}{mm}{dd}{birth}{check}", kind)


def _date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidIdentityNumber("the date part is not a real date") from None
