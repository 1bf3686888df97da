"""Pydantic models of dispenser protocol v1 (``docs/protocol.md``).

These models are the single definition of what a valid message is. They accept unknown extra
fields (the protocol says they are allowed and kept) and refuse naive timestamps, because a time
without an offset cannot be placed on the server's clock.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

MAX_PAYLOAD_BYTES = 8 * 1024
DISPENSER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{3,64}$")
DispenserId = Annotated[str, StringConstraints(pattern=DISPENSER_ID_RE.pattern)]
TOPIC_ROOT = "dosewatch/v1/dispensers"


class EventType(StrEnum):
    DOSE_PRESENTED = "dose_presented"
    DOSE_TAKEN = "dose_taken"
    DOSE_NOT_TAKEN = "dose_not_taken"
    REFILL = "refill"
    LID_OPENED = "lid_opened"
    LID_CLOSED = "lid_closed"
    JAM = "jam"
    ERROR = "error"
    POWER_LOST = "power_lost"
    POWER_RESTORED = "power_restored"
    HELP_PRESSED = "help_pressed"
    CONFIG_APPLIED = "config_applied"


DOSE_EVENT_TYPES = frozenset(
    {EventType.DOSE_PRESENTED, EventType.DOSE_TAKEN, EventType.DOSE_NOT_TAKEN}
)


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    v: Literal[1]
    dispenser_id: DispenserId

    @field_validator("v", mode="before")
    @classmethod
    def _integer_version(cls, value: object) -> object:
        # Lax pydantic would take true or 1.0 as 1; the protocol says the integer 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be the integer 1")
        return value

    @field_validator("occurred_at", "dose_due_at", "at", mode="before", check_fields=False)
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        # pydantic would take a Unix number as a time; the protocol says RFC 3339 text.
        if value is not None and not isinstance(value, str):
            raise ValueError("must be an RFC 3339 time string with an offset")
        return value


class Event(_Message):
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    seq: Annotated[int, Field(ge=0, strict=True)]
    type: EventType
    occurred_at: AwareDatetime
    dose_due_at: AwareDatetime | None = None
    doses_left: Annotated[int, Field(ge=0, strict=True)] | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class Status(_Message):
    at: AwareDatetime
    battery_pct: Annotated[int, Field(ge=0, le=100)] | None = None
    on_mains: bool | None = None
    doses_left: Annotated[int, Field(ge=0)] | None = None
    temperature_c: float | None = None
    firmware: str | None = None
    rssi_dbm: int | None = None
    schedule_version: int | None = None


class ConfigDose(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    time: time
    window_min: Annotated[int, Field(ge=1, le=240)]

    @field_validator("time", mode="before")
    @classmethod
    def _hh_mm(cls, v: object) -> object:
        if isinstance(v, str) and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError(f"dose time must be HH:MM (00:00-23:59), got {v!r}")
        return v


class Config(_Message):
    """The down-link schedule message; also the shape of the schedule API."""

    version: int
    timezone: str
    doses: list[ConfigDose]
    valid_from: date


def topic_dispenser_id(topic: str) -> tuple[str, str] | None:
    """``dosewatch/v1/dispensers/<id>/<kind>`` → ``(id, kind)``, else ``None``."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != TOPIC_ROOT:
        return None
    return parts[3], parts[4]


def event_topic(dispenser_id: str) -> str:
    return f"{TOPIC_ROOT}/{dispenser_id}/events"


def to_jsonable(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


__all__ = [
    "Config",
    "ConfigDose",
    "DispenserId",
    "Event",
    "EventType",
    "Status",
    "date",
    "datetime",
]
