"""Reads for the FHIR export: decided dose slots, the patient, the dispenser (typed rows).

Which slot states are exported is the domain's rule (:func:`administration_status`); the query
takes that set as a parameter, so SQL never decides it on its own.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dosewatch.db import DbConn
from dosewatch.domain.fhir import DeviceRecord, PatientRecord, SlotRecord, administration_status
from dosewatch.domain.personnummer import IdentityNumber, IdKind
from dosewatch.domain.slots import SlotState

EXPORTED_STATES = [s.value for s in SlotState if administration_status(s) is not None]

# Whether a patient is a training one: its team is a training team (training mode).
_TRAINING = (
    "EXISTS (SELECT 1 FROM patients tp JOIN teams tt ON tt.id = tp.team_id"
    " WHERE tp.id = {patient} AND tt.training)"
)
_FROM = " FROM dose_slots s JOIN dispensers d ON d.id = s.dispenser_id"
_WHERE = (
    " WHERE d.patient_id = %(patient)s AND s.due_at >= %(start)s AND s.due_at < %(end)s"
    " AND s.state = ANY(%(states)s)"
)


def count_decided_slots(conn: DbConn, patient_id: int, start: datetime, end: datetime) -> int:
    row = conn.execute(
        "SELECT count(*) AS n" + _FROM + _WHERE,
        {"patient": patient_id, "start": start, "end": end, "states": EXPORTED_STATES},
    ).fetchone()
    assert row is not None  # count(*) always answers
    return int(row["n"])


def decided_slots(
    conn: DbConn, patient_id: int, start: datetime, end: datetime, *, limit: int, offset: int
) -> list[SlotRecord]:
    """The patient's exported slots due in ``[start, end)``, oldest first, one page."""
    rows = conn.execute(
        "SELECT s.id, s.dispenser_id, d.patient_id, s.due_at, s.window_end, s.state, s.label,"
        " sc.timezone, k.received_at AS taken_received_at,"
        f" {_TRAINING.format(patient='d.patient_id')} AS training"
        + _FROM
        + " LEFT JOIN schedules sc ON sc.dispenser_id = s.dispenser_id"
        " AND sc.version = s.schedule_version"
        " LEFT JOIN dose_event_keys k ON k.dispenser_id = s.dispenser_id"
        " AND k.event_id = s.taken_event_id"
        + _WHERE
        + " ORDER BY s.due_at, s.id LIMIT %(limit)s OFFSET %(offset)s",
        {"patient": patient_id, "start": start, "end": end, "states": EXPORTED_STATES,
         "limit": limit, "offset": offset},  # fmt: skip
    ).fetchall()
    return [
        SlotRecord(
            slot_id=r["id"],
            dispenser_id=r["dispenser_id"],
            patient_id=r["patient_id"],
            due_at=r["due_at"],
            window_end=r["window_end"],
            state=SlotState(r["state"]),
            label=r["label"],
            # The wall-clock time the dose was really presented, from the instant itself.
            local_time=(
                r["due_at"].astimezone(ZoneInfo(r["timezone"])).strftime("%H:%M")
                if r["timezone"]
                else None
            ),
            taken_received_at=r["taken_received_at"],
            training=r["training"],
        )
        for r in rows
    ]


def patient_record(conn: DbConn, patient_id: int, *, with_identity: bool) -> PatientRecord | None:
    row = conn.execute(
        "SELECT id, name, phone, address, personal_id, personal_id_kind,"
        f" {_TRAINING.format(patient='patients.id')} AS training FROM patients WHERE id = %s",
        (patient_id,),
    ).fetchone()
    if row is None:
        return None
    identity = None
    if with_identity and row["personal_id"]:
        identity = IdentityNumber(row["personal_id"], IdKind(row["personal_id_kind"]))
    return PatientRecord(
        row["id"], row["name"], row["phone"], row["address"], identity, row["training"]
    )


def device_record(conn: DbConn, dispenser_id: str) -> DeviceRecord | None:
    row = conn.execute(
        f"SELECT d.id, d.patient_id, ls.firmware, {_TRAINING.format(patient='d.patient_id')}"
        " AS training FROM dispensers d"
        " LEFT JOIN dispenser_latest_status ls ON ls.dispenser_id = d.id WHERE d.id = %s",
        (dispenser_id,),
    ).fetchone()
    if row is None:
        return None
    return DeviceRecord(row["id"], row["patient_id"], row["firmware"], row["training"])


def set_identity(conn: DbConn, patient_id: int, identity: IdentityNumber | None) -> bool:
    """Store (or with None remove) the number; False when another patient already has it."""
    taken = conn.execute(
        "SELECT 1 FROM patients WHERE personal_id = %s AND id <> %s",
        (identity.digits if identity else None, patient_id),
    ).fetchone()
    if taken:
        return False
    conn.execute(
        "UPDATE patients SET personal_id = %s, personal_id_kind = %s WHERE id = %s",
        (identity.digits if identity else None, identity.kind.value if identity else None,
         patient_id),
    )  # fmt: skip
    return True
