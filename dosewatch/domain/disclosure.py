"""What an SMS or a call may say about a patient: the one rule (pure).

SMS and voicemail are not protected channels: phones are lost, lock screens show previews,
voicemails are forwarded. The Patient Data Act and GDPR's data minimisation ask for the least
that lets the nurse act, with the rest behind sign-in. So every message that names a patient
names them through :func:`shown_patient`, at the level the patient's team chose:

- ``minimal`` (the default, and what a team without a choice gets): the initials and a short
  reference (``A.B. #17``, the patient's id, as in ``/patients/17``) and the district. Enough
  to know at 03:00 whose dispenser it is and where to drive; the name, address, phone and
  history are one tap away in the console.
- ``full``: the full name and the address as well. Only when a team turns it on, which is
  audited (who, when).

The patient's own phone number is in no notification at either level: the nurse calls from
the console. A voice call says nothing about the patient before a key is pressed (see
:mod:`dosewatch.messages`), whatever the level.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Detail(StrEnum):
    MINIMAL = "minimal"
    FULL = "full"


DEFAULT_DETAIL = Detail.MINIMAL


@dataclass(frozen=True)
class Patient:
    """The patient as the database knows them."""

    id: int
    name: str
    address: str | None
    district: str | None


@dataclass(frozen=True)
class Shown:
    """What a message may carry about the patient."""

    label: str  # "A.B. #17", or the full name
    address: str | None  # only at the full level
    district: str | None


def initials(name: str) -> str:
    """``Astrid Berg`` → ``A.B.``; the first and last word only (``Anna-Karin von Ek`` →
    ``A.E.``), so a long name does not spell itself out letter by letter."""
    words = [w for w in name.replace("-", " ").split() if w[:1].isalpha()]
    if not words:
        return "?"
    chosen = words if len(words) == 1 else [words[0], words[-1]]
    return "".join(f"{w[0].upper()}." for w in chosen)


def reference(patient_id: int) -> str:
    return f"#{patient_id}"


def shown_patient(patient: Patient, detail: Detail) -> Shown:
    if detail is Detail.FULL:
        return Shown(patient.name, patient.address or None, patient.district or None)
    return Shown(
        f"{initials(patient.name)} {reference(patient.id)}", None, patient.district or None
    )
