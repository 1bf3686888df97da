"""Request and response bodies of the JSON API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from dashboards.fields import HHMM, By, Day, Id, Instant, Label, Name, Note, Text
from dosewatch.domain.alarms import Outcome
from dosewatch.domain.protocol import ConfigDose, DispenserId


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatientIn(_In):
    name: Name
    phone: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{5,20}$")]
    address: Text | None = None
    note: Note | None = None


class Patient(BaseModel):
    id: int
    name: str
    phone: str
    address: str | None
    note: str | None
    created_at: datetime
    team_id: int | None = Field(default=None, description="the team its alarms page")


class DispenserIn(_In):
    id: DispenserId
    patient_id: Id


class Dispenser(BaseModel):
    id: str
    patient_id: int
    created_at: datetime
    schedule_version: int | None = None


class Presence(BaseModel):
    online: bool | None = Field(
        default=None, description="last value on the `online` topic (Last Will = false)"
    )
    online_changed_at: datetime | None = None
    last_seen_at: datetime | None = Field(
        default=None, description="server time of the latest message from the dispenser"
    )
    clock_offset_s: float | None = Field(
        default=None,
        description="estimated device clock minus server clock; shown, never used for deadlines",
    )
    clock_flagged: bool = Field(default=False, description="clock more than 2 minutes off")


class DispenserDetail(Dispenser):
    presence: Presence


class ScheduleDose(ConfigDose):
    """A dose time as the protocol's config has it, plus what only the server needs."""

    weekdays: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(min_length=1)] | None = (
        Field(default=None, description="ISO weekdays, 1 = Monday … 7 = Sunday; omit for daily")
    )
    label: Label | None = None
    time_critical: bool = Field(default=False, description="raises the alarm priority to high")

    def days(self) -> set[int]:
        return set(self.weekdays or range(1, 8))


class ScheduleIn(_In):
    """The protocol's ``config`` message without its envelope (v, dispenser_id, version), plus
    optional weekdays, labels, time-critical flags, an end date and the moment it takes effect."""

    timezone: Name | None = Field(default=None, description="IANA zone; default DOSEWATCH_TIMEZONE")
    doses: Annotated[list[ScheduleDose], Field(min_length=1, max_length=12)]
    valid_from: Day
    valid_until: Day | None = None
    effective_from: Instant | None = Field(
        default=None, description="when this version replaces the previous one; default now"
    )
    changed_by: By = "api"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v

    @field_validator("doses")
    @classmethod
    def _distinct(cls, v: list[ScheduleDose]) -> list[ScheduleDose]:
        for i, a in enumerate(v):
            for b in v[i + 1 :]:
                if a.time == b.time and a.days() & b.days():
                    raise ValueError(f"two doses at the same time ({a.time:%H:%M}) on one day")
        return v

    @model_validator(mode="after")
    def _dates(self) -> ScheduleIn:
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self

    def doses_json(self) -> list[dict[str, Any]]:
        out = []
        for d in self.doses:
            dose: dict[str, Any] = {"time": d.time.strftime("%H:%M"), "window_min": d.window_min}
            if d.weekdays:
                dose["weekdays"] = sorted(set(d.weekdays))
            if d.label:
                dose["label"] = d.label
            if d.time_critical:
                dose["time_critical"] = True
            out.append(dose)
        return out


class Schedule(BaseModel):
    dispenser_id: str
    version: int
    timezone: str
    doses: list[dict[str, Any]]
    valid_from: date
    valid_until: date | None
    effective_from: datetime
    created_at: datetime
    created_by: str


LOCAL_TIME = (
    "HH:MM, the wall-clock time in the schedule's zone at which the dispenser really presents"
    " the dose (due_at there): a 02:30 dose on the spring-forward night is presented at 03:30"
)
SCHEDULED_TIME = "HH:MM, the dose time as the schedule writes it"


class Slot(BaseModel):
    id: int
    due_at: datetime
    window_end: datetime
    state: str
    schedule_version: int
    label: str | None
    time_critical: bool
    local_time: HHMM | None = Field(description=LOCAL_TIME)
    scheduled_time: HHMM | None = Field(description=SCHEDULED_TIME)
    absence_id: int | None


class PlannedSlot(BaseModel):
    due_at: datetime
    window_end: datetime
    state: str = Field(description="pending, or suspended inside an absence")
    label: str | None
    time_critical: bool
    local_date: date = Field(description="the local day the dose belongs to")
    local_time: HHMM = Field(description=LOCAL_TIME)
    scheduled_time: HHMM = Field(description=SCHEDULED_TIME)
    schedule_version: int
    absence_id: int | None
    dst_change_day: bool = Field(description="the local day has 23 or 25 hours")


class SchedulePut(Schedule):
    preview: list[PlannedSlot] = Field(description="the next 7 days of slots")


class AbsenceIn(_In):
    starts_at: Instant
    ends_at: Instant
    reason: Text
    by: By = "api"

    @model_validator(mode="after")
    def _order(self) -> AbsenceIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class AbsenceEnd(_In):
    by: By = "api"


class Absence(BaseModel):
    id: int
    dispenser_id: str
    starts_at: datetime
    ends_at: datetime
    effective_end: datetime
    reason: str
    created_by: str
    created_at: datetime
    ended_at: datetime | None
    ended_by: str | None


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
    team_id: int | None = None
    next_step_at: datetime | None = Field(
        default=None, description="when the escalation acts next; null when it has stopped"
    )
    step_index: int = 0
    step_round: int = 0
    remind_at: datetime | None = None
    ack_code: str | None = Field(default=None, description="reply 'OK <code>' by SMS")
    acknowledged_nurse_id: int | None = None
    training: bool = Field(
        default=False,
        description="a training team's alarm (training mode): never a real patient, never"
        " forwarded to an alarm receiving centre, left out of every report",
    )


class AlarmHistory(BaseModel):
    at: datetime
    action: str
    actor: str
    via: str
    detail: dict[str, Any]


class Notification(BaseModel):
    """One entry of the escalation timeline: who was notified how and when, and the outcome."""

    id: int
    purpose: str
    channel: str
    nurse_id: int | None
    nurse_name: str | None
    to_number: str | None
    status: str
    attempts: int
    step_index: int | None
    step_round: int | None
    created_at: datetime
    sent_at: datetime | None
    updated_at: datetime
    last_error: str | None


class AlarmDetail(Alarm):
    history: list[AlarmHistory]
    notifications: list[Notification]


class AcknowledgeIn(_In):
    by: By = "api"
    nurse_id: Id | None = Field(
        default=None, description="the nurse who has it (for reminders); must exist"
    )


class ResolveIn(_In):
    outcome: Outcome
    note: Note | None = None
    by: By = "api"
    nurse_id: Id | None = Field(default=None, description="the nurse who resolved it; must exist")


class QuarantineItem(BaseModel):
    """One distinct refused message (same topic, bytes and reason), however often it came."""

    id: int
    received_at: datetime = Field(description="the first receipt")
    last_received_at: datetime = Field(description="the latest receipt")
    repeats: int = Field(
        ge=1, description="receipts in all: broker redeliveries and device resends count here"
    )
    topic: str
    reason: str
    dispenser_id: str | None
    payload_text: str | None = Field(description="the raw bytes as text, when they are UTF-8")
    payload_base64: str
