"""The API's boundary types, defined once: every text and id a request carries uses them.

PostgreSQL refuses a NUL character in text and any integer beyond ``bigint``; both used to
reach the database and come back as a 500. Constraining them here turns them into a 422 that
names the field, before any query runs.

One error shape, as the OpenAPI says:

- 422: FastAPI's standard ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``, for
  a malformed request and for a well-formed one whose values the server refuses (a reference
  to a record that does not exist, an absence already over): :func:`invalid` raises it.
- every other 4xx: :class:`ErrorBody`, ``{"detail": "one sentence"}``.

``errors(...)`` documents the 4xx answers a route really gives; 401 and 403 answered by the
sign-in middleware (and 400 for an undecodable body) are added by :mod:`dashboards.answers`.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, NoReturn

from fastapi import Path
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
)

from dosewatch.domain.protocol import DISPENSER_ID_RE

BIGINT_MAX = 2**63 - 1
_NO_NUL = "^[^\\u0000]*$"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def text(max_length: int = 500, *, min_length: int = 1, strip: bool = True) -> Any:
    """A free-text type: stripped, no NUL, bounded. Name a new size here (``Name =
    text(200)``) and import it: mypy takes an imported alias as a type, not a call."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=strip, min_length=min_length, max_length=max_length),
        AfterValidator(_no_nul),
        # Said in the OpenAPI too, so a client (and the fuzzer) knows NUL is refused.
        Field(json_schema_extra={"pattern": _NO_NUL}),
    ]


# The common sizes, named here: mypy accepts an imported alias as a type, not a local call.
Text = text(500)
Name = text(200)  # a person's, team's or patient's name; a query filter (actor, district)
By = text(100)  # who did it, as stored on a change ("acknowledged_by", "created_by")
Label = text(40)
Note = text(2000, min_length=0, strip=False)  # free text a nurse writes, kept as written
Credential = text(1024, min_length=0, strip=False)  # a sign-in form's field, as typed
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX, description="a record id")]
# A dispenser's id in a path: what the protocol allows, so anything else cannot exist (422).
DispenserPath = Annotated[
    str, Path(pattern=DISPENSER_ID_RE.pattern, description="a dispenser id, e.g. DSP-000123")
]


def _date_only(value: object) -> object:
    # pydantic would read "2026-11-23T00:00:00" as a date too; without an offset that is a
    # wall time, which is refused like any other.
    if isinstance(value, str) and len(value.strip()) != 10:
        raise ValueError("a date is YYYY-MM-DD; an instant needs a UTC offset")
    return value


# Instants and days a request may name. Beyond these a date is a typing mistake, and near
# Python's year 9999 adding a week or a window overflows (it was a 500).
FIRST_YEAR, LAST_YEAR = 1970, 2999


def in_calendar(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be in the years {FIRST_YEAR} to {LAST_YEAR}")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(in_calendar)]
Day = Annotated[date, AfterValidator(in_calendar)]
# An instant, or a calendar date meaning local midnight in the zone of whatever is asked
# about (a schedule's time zone for previews and slots): an admin thinks in days.
InstantOrDate = Instant | Annotated[date, BeforeValidator(_date_only), AfterValidator(in_calendar)]
HHMM = Annotated[
    str,
    Field(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        examples=["08:00"],
        description="local wall-clock time, HH:MM",
    ),
]


def hhmm(value: time | datetime) -> str:
    """``HH:MM``, the form every local time is served in (no seconds, no offset)."""
    return value.strftime("%H:%M")


class ErrorBody(BaseModel):
    """Every 4xx but 422: one human-readable sentence."""

    detail: str


def invalid(loc: tuple[str | int, ...], msg: str, kind: str = "value_error") -> NoReturn:
    """Refuse a request in the standard 422 shape, naming the field (``("body", "nurse_id")``,
    ``("query", "from")``), for what only the server can judge: a reference to a record that
    does not exist, a moment already past."""
    raise RequestValidationError([{"loc": loc, "msg": msg, "type": kind}])


_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Forbidden (role or CSRF token)",
    404: "Not found (or not visible to the caller's team)",
    409: "Conflicts with the record's current state",
    429: "Too many attempts",
    503: "A service it needs is not available",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: the listed error codes with the error body."""
    return {code: {"model": ErrorBody, "description": _TITLES.get(code, "Error")} for code in codes}
