"""Request and response bodies of the JSON API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from dosewatch.domain.alarms import Outcome
from dosewatch.domain.protocol import ConfigDose, DispenserId

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientIn(_In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    phone: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{5,20}$")]
    address: Text | None = None
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None


class Patient(BaseModel):
    id: int
    name: str
    phone: str
    address: str | None
    note: str | None
    created_at: datetime


class DispenserIn(_In):
    id: DispenserId
    patient_id: int


class Dispenser(BaseModel):
    id: str
    patient_id: int
    created_at: datetime
    schedule_version: int | None = None


class ScheduleIn(_In):
    """The protocol's ``config`` message without its envelope (v, dispenser_id, version)."""

    timezone: str
    doses: Annotated[list[ConfigDose], Field(min_length=1, max_length=12)]
    valid_from: date

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v

    @field_validator("doses")
    @classmethod
    def _distinct(cls, v: list[ConfigDose]) -> list[ConfigDose]:
        times = [d.time for d in v]
        if len(set(times)) != len(times):
            raise ValueError("two doses at the same time")
        return v


class Schedule(BaseModel):
    dispenser_id: str
    version: int
    timezone: str
    doses: list[dict[str, Any]]
    valid_from: date
    created_at: datetime


class Slot(BaseModel):
    id: int
    due_at: datetime
    window_end: datetime
    state: str
    schedule_version: int


class DoseEvent(BaseModel):
    event_id: str
    seq: int
    type: str
    occurred_at: datetime
    received_at: datetime
    dose_due_at: datetime | None
    doses_left: int | None
    slot_id: int | None
    match: str
    payload: dict[str, Any]


class Alarm(BaseModel):
    id: int
    kind: str
    dispenser_id: str
    patient_id: int
    slot_id: int | None
    slot_due_at: datetime | None
    priority: str
    state: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    outcome: str | None
    note: str | None


class AlarmHistory(BaseModel):
    at: datetime
    action: str
    actor: str
    via: str
    detail: dict[str, Any]


class AlarmDetail(Alarm):
    history: list[AlarmHistory]


class AcknowledgeIn(_In):
    by: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "api"


class ResolveIn(_In):
    outcome: Outcome
    note: Annotated[str, StringConstraints(max_length=2000)] | None = None
    by: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "api"


class QuarantineItem(BaseModel):
    id: int
    received_at: datetime
    topic: str
    reason: str
    dispenser_id: str | None
    payload_text: str | None = Field(description="the raw bytes as text, when they are UTF-8")
    payload_base64: str
