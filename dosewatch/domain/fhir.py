"""The dose record as HL7 FHIR R4 (4.0.1) resources (pure: data in, JSON-ready dicts out).

One rule owns what a slot becomes in a care record, :func:`administration_status`:

``taken``        → ``completed``; effective = when the *server received* the take (the
                   device clock is not trusted, as everywhere in dosewatch);
``taken_late``   → ``completed``, with a note and the ``late`` extension saying it was late;
``missed``       → ``not-done`` with a ``statusReason`` ("not taken within the window");
``unknown``      → ``unknown``: the dispenser was offline when the window closed and nothing
                   has come in since. It is never exported as ``completed``;
``pending``      → nothing yet (the window is open: nothing to document);
``suspended``    → nothing: the patient was away (hospital, trip), no dose was expected, so
                   writing ``not-done`` would document a miss that did not happen.

The dispenser is the performer (a ``Device``), the patient the subject. Dispensed pouches carry
no medication code in dosewatch (the pharmacy system knows the pouch's contents), so the
medication is a text: the schedule's label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dosewatch.domain.personnummer import IdentityNumber
from dosewatch.domain.slots import SlotState

FHIR_VERSION = "4.0.1"
LOCAL_PATIENT_SYSTEM = "urn:dosewatch:patient"
LOCAL_DEVICE_SYSTEM = "urn:dosewatch:dispenser"
LATE_EXTENSION = "urn:dosewatch:fhir:StructureDefinition:taken-late"
# No SNOMED CT code says "not taken within the dispenser's window" exactly, and a wrong code in
# a care record is worse than none: a local code with a plain text a reader understands.
_NOT_TAKEN = {
    "coding": [{"system": "urn:dosewatch:not-done-reason", "code": "window-closed",
                "display": "not taken within the dose window"}],
    "text": "dose not taken within its window",
}  # fmt: skip

Json = dict[str, Any]

# HL7's security label for test data (v3 ActReason HTEST): a training patient's resources
# (training mode) carry it, so a receiving record system keeps them out of anyone's care.
TEST_DATA = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "HTEST",
    "display": "test health data",
}


def _labelled(resource: Json, training: bool) -> Json:
    if training:
        resource["meta"] = {"security": [dict(TEST_DATA)]}
    return resource


@dataclass(frozen=True)
class SlotRecord:
    slot_id: int
    dispenser_id: str
    patient_id: int
    due_at: datetime
    window_end: datetime
    state: SlotState
    label: str | None
    local_time: str | None  # HH:MM on the patient's wall clock
    taken_received_at: datetime | None
    training: bool = False  # a training team's patient (training mode)


@dataclass(frozen=True)
class PatientRecord:
    id: int
    name: str
    phone: str | None
    address: str | None
    identity: IdentityNumber | None  # None unless the caller's role may see it
    training: bool = False


@dataclass(frozen=True)
class DeviceRecord:
    id: str
    patient_id: int
    firmware: str | None
    training: bool = False


def administration_status(state: SlotState) -> str | None:
    """The MedicationAdministration status of a slot, or None if it is not exported."""
    return {
        SlotState.TAKEN: "completed",
        SlotState.TAKEN_LATE: "completed",
        SlotState.MISSED: "not-done",
        SlotState.UNKNOWN: "unknown",
    }.get(state)


def medication_administration(slot: SlotRecord) -> Json | None:
    status = administration_status(slot.state)
    if status is None:
        return None
    what = slot.label or "dose"
    resource: Json = {
        "resourceType": "MedicationAdministration",
        "id": f"slot-{slot.slot_id}",
        "identifier": [{"system": "urn:dosewatch:dose-slot", "value": str(slot.slot_id)}],
        "status": status,
        "medicationCodeableConcept": {"text": f"dispensed dose pouch: {what}"},
        "subject": {"reference": f"Patient/{slot.patient_id}"},
        "performer": [{"actor": {"reference": f"Device/{slot.dispenser_id}"}}],
        "dosage": {"text": f"{what} {slot.local_time}" if slot.local_time else what},
    }
    if slot.state in (SlotState.TAKEN, SlotState.TAKEN_LATE) and slot.taken_received_at:
        resource["effectiveDateTime"] = _instant(slot.taken_received_at)
    else:
        resource["effectivePeriod"] = {"start": _instant(slot.due_at),
                                       "end": _instant(slot.window_end)}  # fmt: skip
    if slot.state is SlotState.TAKEN_LATE:
        resource["extension"] = [{"url": LATE_EXTENSION, "valueBoolean": True}]
        resource["note"] = [{"text": "taken late: after the dose window had closed"}]
    elif slot.state is SlotState.MISSED:
        resource["statusReason"] = [_NOT_TAKEN]
    elif slot.state is SlotState.UNKNOWN:
        resource["note"] = [{"text": "dispenser offline when the window closed; not known "
                                     "whether the dose was taken"}]  # fmt: skip
    return _labelled(resource, slot.training)


def patient(record: PatientRecord) -> Json:
    identifiers: list[Json] = [{"system": LOCAL_PATIENT_SYSTEM, "value": str(record.id)}]
    if record.identity is not None:
        identifiers.insert(0, {"use": "official", "system": record.identity.system,
                               "value": record.identity.digits})  # fmt: skip
    resource: Json = {
        "resourceType": "Patient",
        "id": str(record.id),
        "identifier": identifiers,
        "name": [{"text": record.name}],
    }
    if record.phone:
        resource["telecom"] = [{"system": "phone", "value": record.phone, "use": "home"}]
    if record.address:
        resource["address"] = [{"text": record.address, "use": "home"}]
    return _labelled(resource, record.training)


def device(record: DeviceRecord) -> Json:
    resource: Json = {
        "resourceType": "Device",
        "id": record.id,
        "identifier": [{"system": LOCAL_DEVICE_SYSTEM, "value": record.id}],
        "status": "active",
        "deviceName": [{"name": f"medication dispenser {record.id}", "type": "user-friendly-name"}],
        "type": {"text": "automated medication dispenser"},
        "patient": {"reference": f"Patient/{record.patient_id}"},
    }
    if record.firmware:
        resource["version"] = [{"type": {"text": "firmware"}, "value": record.firmware}]
    return _labelled(resource, record.training)


def searchset(
    resources: Sequence[Json], *, total: int, self_url: str, next_url: str | None
) -> Json:
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r,
             "search": {"mode": "match"}}  # fmt: skip
            for r in resources
        ],
    }


def operation_outcome(severity: str, code: str, text: str) -> Json:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }


def _instant(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("FHIR instants need an offset")
    return at.isoformat()
