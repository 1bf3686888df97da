"""The one rule for what a slot becomes in the care record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fhirclient.models.medicationadministration import MedicationAdministration

from dosewatch.domain.fhir import SlotRecord, administration_status, medication_administration
from dosewatch.domain.slots import SlotState

DUE = datetime(2026, 11, 23, 7, tzinfo=UTC)


def _slot(state: SlotState, taken: datetime | None = None) -> SlotRecord:
    return SlotRecord(1, "DSP-1", 7, DUE, DUE + timedelta(minutes=45), state, "Morgon", "08:00",
                      taken)  # fmt: skip


def test_every_state_has_one_answer_and_unknown_is_never_completed() -> None:
    assert {s: administration_status(s) for s in SlotState} == {
        SlotState.PENDING: None,
        SlotState.SUSPENDED: None,
        SlotState.TAKEN: "completed",
        SlotState.TAKEN_LATE: "completed",
        SlotState.MISSED: "not-done",
        SlotState.UNKNOWN: "unknown",
    }


def test_every_exported_state_is_a_valid_r4_resource() -> None:
    received = DUE + timedelta(minutes=70)
    for state in SlotState:
        taken = received if state in (SlotState.TAKEN, SlotState.TAKEN_LATE) else None
        resource = medication_administration(_slot(state, taken))
        if administration_status(state) is None:
            assert resource is None
            continue
        assert resource is not None
        MedicationAdministration(resource, strict=True)
        if taken:
            assert resource["effectiveDateTime"] == received.isoformat()
        else:
            assert resource["effectivePeriod"]["start"] == DUE.isoformat()
