"""Request and response bodies for teams, nurses, shifts, escalation policies and a patient's
team and contact (``dashboards.teams_api``).

Shape rules live here, so a wrong body is a 422 naming the field. Rules that need the database
(the nurse belongs to the team, shifts do not overlap) live in the routes. The escalation
policy's *content* rules live in one place, :func:`dosewatch.domain.escalation.validate`: the
body model only checks types, so the API cannot drift from what the escalation sweep accepts.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from dashboards.fields import Id, in_calendar
from dashboards.fields import Name as Name
from dosewatch.domain.escalation import Channel, Policy, Step, Target
from dosewatch.domain.roster import Role

# A shift longer than a week is almost certainly a typed-wrong date, not an on-call week.
MAX_SHIFT = timedelta(days=7)
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _e164(value: object) -> object:
    """Spaces, dashes and dots are how people write numbers; the stored form has none, so that
    an SMS reply's sender (always E.164) finds the nurse by plain equality."""
    if not isinstance(value, str):
        return value
    compact = re.sub(r"[\s.-]", "", value)
    if not _E164.match(compact):
        raise ValueError("must be an E.164 number: + country code and number, e.g. +46701234567")
    return compact


Phone = Annotated[str, BeforeValidator(_e164)]
Language = Literal["sv", "en"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TeamIn(_In):
    name: Name


class Team(BaseModel):
    id: int
    name: str
    created_at: datetime
    policy_version: int | None = Field(description="current escalation policy; null: default")
    training: bool = Field(
        default=False,
        description="a training team (training mode): its alarms are practice, marked as such,"
        " never paging a real number, in no report",
    )


class NurseIn(_In):
    team_id: Id
    name: Name
    phone: Phone
    language: Language = "sv"


class NursePatch(_In):
    """Only the fields given change. Moving a nurse to another team is not offered: the nurse's
    shifts belong to the old team's roster."""

    active: bool | None = None
    phone: Phone | None = None
    language: Language | None = None

    @model_validator(mode="after")
    def _something(self) -> NursePatch:
        if self.active is None and self.phone is None and self.language is None:
            raise ValueError("nothing to change: give active, phone or language")
        return self


class Nurse(BaseModel):
    id: int
    team_id: int
    name: str
    phone: str
    language: str
    active: bool
    created_at: datetime


def _aware(value: datetime) -> datetime:
    # A wall time without an offset is ambiguous on the fall-back night and may not exist on
    # the spring-forward night; a roster must say which instant it means.
    if value.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2026-11-23T22:00:00+01:00 or …Z")
    return value


Instant = Annotated[datetime, AfterValidator(_aware), AfterValidator(in_calendar)]


class ShiftIn(_In):
    nurse_id: Id
    starts_at: Instant
    ends_at: Instant
    role: Role

    @model_validator(mode="after")
    def _order(self) -> ShiftIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_SHIFT:
            raise ValueError("a shift may last at most 7 days")
        return self


class Shift(BaseModel):
    id: int
    team_id: int
    nurse_id: int
    nurse_name: str
    role: Role
    starts_at: datetime
    ends_at: datetime
    duration_min: int = Field(description="real minutes: a DST night shift is 1 h shorter/longer")


class RosterGap(BaseModel):
    starts_at: datetime
    ends_at: datetime
    duration_min: int
    unreachable_nurse_ids: list[int] = Field(
        description="primary/backup nurses rostered in the gap who are inactive or have no phone"
    )


class RosterGaps(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    team_id: int
    from_: datetime = Field(alias="from")
    to: datetime
    covered: bool = Field(description="a reachable primary or backup nurse at every moment")
    gaps: list[RosterGap]


class PolicyStep(_In):
    target: Target
    channels: list[Channel]
    wait_min: int = Field(description="minutes to wait for an acknowledgement")

    @field_validator("channels")
    @classmethod
    def _once_each(cls, v: list[Channel]) -> list[Channel]:
        for c in set(v):
            if v.count(c) > 1:
                raise ValueError(f"{c.value} is listed twice")
        return v


class PolicyBody(_In):
    """Mirrors :meth:`Policy.to_json`; defaults are the dataclass's."""

    steps: Annotated[list[PolicyStep], Field(max_length=20)]
    repeats: int = 0
    remind_after_ack_min: int | None = 30
    reopen_after_reminder: bool = False

    def to_policy(self) -> Policy:
        return Policy(
            steps=tuple(Step(s.target, tuple(s.channels), s.wait_min) for s in self.steps),
            repeats=self.repeats,
            remind_after_ack_min=self.remind_after_ack_min,
            reopen_after_reminder=self.reopen_after_reminder,
        )


class PolicyVersion(BaseModel):
    team_id: int
    version: int
    created_at: datetime
    created_by: str
    policy: PolicyBody


class CurrentPolicy(BaseModel):
    team_id: int
    is_default: bool = Field(description="the team has no policy of its own; this one applies")
    version: int | None
    created_at: datetime | None
    created_by: str | None
    policy: PolicyBody


class PatientTeamIn(_In):
    team_id: Id | None = Field(description="null: no team (alarms stay on the console)")


class PatientContactIn(_In):
    contact_phone: Phone | None
    sms_consent: bool

    @model_validator(mode="after")
    def _consent_needs_number(self) -> PatientContactIn:
        if self.sms_consent and self.contact_phone is None:
            raise ValueError("sms_consent needs a contact_phone to send to")
        return self


class PatientContact(BaseModel):
    patient_id: int
    contact_phone: str | None
    contact_sms_consent_at: datetime | None
    sms_consent: bool
