"""Response models of the report routes (``docs/reports-api.md``), so the OpenAPI shows them."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class Period(BaseModel):
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    days: int


class Figures(BaseModel):
    expected: int = Field(description="decided, not suspended: taken+taken_late+missed+unknown")
    taken: int = Field(description="taken inside the window (server receive time)")
    taken_late: int
    missed: int
    unknown: int = Field(description="offline at window close, never resolved: not taken")
    suspended: int = Field(description="inside an absence: in no figure")
    pending: int = Field(description="window not closed yet: in no figure")
    taking_adherence_pct: float | None
    timing_adherence_pct: float | None
    correct_dosing_days: int
    monitored_days: int
    correct_dosing_days_pct: float | None
    patients: int


class WeekPoint(BaseModel):
    week: str = Field(examples=["2026-W48"])
    week_start: date
    figures: Figures


class PatientRow(BaseModel):
    patient_id: int
    name: str
    team_id: int | None
    district: str | None
    figures: Figures


class TeamFigures(BaseModel):
    team_id: int | None
    name: str | None
    figures: Figures


class DistrictFigures(BaseModel):
    team_id: int | None = None
    team_name: str | None = None
    district: str | None
    figures: Figures


class Municipality(BaseModel):
    period: Period
    threshold_pct: float
    figures: Figures
    teams: list[TeamFigures]
    districts: list[DistrictFigures]
    weekly: list[WeekPoint]
    under_threshold: list[PatientRow]


class TeamRef(BaseModel):
    team_id: int
    name: str


class TeamReport(BaseModel):
    period: Period
    threshold_pct: float
    team: TeamRef
    district: str | None = None
    figures: Figures
    districts: list[DistrictFigures]
    weekly: list[WeekPoint]
    patients: list[PatientRow]
    under_threshold: list[PatientRow]


class PatientInfo(BaseModel):
    patient_id: int
    name: str
    team_id: int | None
    team_name: str | None
    district: str | None
    timezone: str | None
    dispensers: list[str]


class Day(BaseModel):
    date: date
    expected: int
    taken: int
    taken_late: int
    missed: int
    unknown: int
    suspended: int
    pending: int
    correct: bool | None = Field(description="null on a day that is not monitored")


class DoseTime(BaseModel):
    local_time: str | None
    label: str | None
    figures: Figures


class PatientReport(BaseModel):
    period: Period
    patient: PatientInfo
    figures: Figures
    weekly: list[WeekPoint]
    daily: list[Day]
    doses: list[DoseTime]


class CalendarSlot(BaseModel):
    slot_id: int
    dispenser_id: str
    date: date
    local_time: str | None
    label: str | None
    due_at: datetime
    window_end: datetime
    state: str
    counted_as: str = Field(description="the state it counts as (an absence makes it suspended)")
    taken_received_at: datetime | None
    taken_occurred_at: datetime | None
    counts: bool


class Calendar(BaseModel):
    period: Period
    patient_id: int
    slots: list[CalendarSlot]


class Durations(BaseModel):
    count: int
    median_s: float | None
    p90_s: float | None


class AlarmGroup(BaseModel):
    key: str
    label: str
    alarms: int
    time_to_acknowledge: Durations
    time_to_resolve: Durations


class Outcome(BaseModel):
    outcome: str
    count: int


class DeliveryFailure(BaseModel):
    channel: str
    status: str
    count: int


class AlarmReport(BaseModel):
    period: Period
    team_id: int | None
    alarms: int
    patient_days: int
    alarms_per_100_patient_days: float | None
    time_to_acknowledge: Durations
    time_to_resolve: Durations
    not_acknowledged_within_15_min: int
    reached_last_step: int
    by_team: list[AlarmGroup]
    by_shift: list[AlarmGroup]
    by_kind: list[AlarmGroup]
    outcomes: list[Outcome]
    delivery_failures: list[DeliveryFailure]


class EconomicsSettings(BaseModel):
    visit_anyway_share: float
    minutes_per_visit: float
    cost_per_hour_sek: float
    cost_per_visit_sek: float
    dispenser_rent_sek_per_month: float


class EconomicsReport(BaseModel):
    period: Period
    team_id: int | None
    settings: EconomicsSettings
    doses_dispensed: int
    visits_avoided: float
    staff_hours_freed: float
    gross_saving_sek: float
    dispenser_months: float
    rent_sek: float
    net_sek: float
    months: float
    net_sek_per_month: float | None


class Falling(BaseModel):
    patient_id: int
    name: str
    team_id: int | None
    recent_pct: float
    before_pct: float
    change_pp: float
    recent_expected: int
    before_expected: int


class LateHabit(BaseModel):
    patient_id: int
    name: str
    dispenser_id: str
    local_time: str | None
    label: str | None
    takes: int
    late: int
    median_take_time: str | None
    median_delay_min: float
    suggested_time: str | None
    evidence: str


class DeviceTrouble(BaseModel):
    dispenser_id: str
    patient_id: int
    name: str
    offline_periods: int
    unknown_slots: int
    replayed_events: int
    clock_offset_s: float | None
    clock_flagged: bool
    reasons: list[str] = Field(description="offline, unknown_doses, replays, clock")


class Insights(BaseModel):
    as_of: date
    team_id: int | None
    falling: list[Falling]
    habitually_late: list[LateHabit]
    devices: list[DeviceTrouble]
