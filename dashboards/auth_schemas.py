"""Request and response bodies for sign-in, users and the audit log (:mod:`dashboards.auth_api`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from dashboards.fields import Credential, Id, Name

Role = Literal["nurse", "pharmacist", "manager", "admin"]
Language = Literal["sv", "en"]
Username = Annotated[
    str,
    BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v),
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9._@-]{1,63}$"),
    Field(description="2-64 of a-z 0-9 . _ @ - (stored in lower case)"),
]
Password = Annotated[str, Field(min_length=8, max_length=1024)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    username: Credential
    password: Credential


class Me(BaseModel):
    username: str
    name: str
    role: Role
    team_id: int | None
    language: Language
    csrf_token: str | None = Field(description="send it back as X-CSRF-Token; null for tokens")


class UserIn(_In):
    username: Username
    name: Name
    role: Role
    team_id: Id | None = Field(
        default=None, description="required for nurses and pharmacists; must exist"
    )
    language: Language = "sv"
    password: Password


class UserPatch(_In):
    """Only the fields given change (``team_id: null`` clears the team of a manager/admin)."""

    name: Name | None = None
    role: Role | None = None
    team_id: Id | None = None
    language: Language | None = None
    active: bool | None = None
    password: Password | None = None

    @model_validator(mode="after")
    def _no_null_except_team(self) -> UserPatch:
        nulls = [k for k in self.model_fields_set if k != "team_id" and getattr(self, k) is None]
        if nulls:
            raise ValueError(f"{', '.join(sorted(nulls))} cannot be null")
        return self


class User(BaseModel):
    id: int
    username: str
    name: str
    role: Role
    team_id: int | None
    language: Language
    active: bool
    created_at: datetime
    updated_at: datetime


class AuditRow(BaseModel):
    id: int
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str
    actor_role: str | None
    action: str
    object_type: str | None
    object_id: str | None
    detail: dict[str, Any]
    client_ip: str | None
    user_agent: str | None
