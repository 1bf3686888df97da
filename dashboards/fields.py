"""The API's boundary types, defined once: every text and id a request carries uses them.

PostgreSQL refuses a NUL character in text and any integer beyond ``bigint``; both used to
reach the database and come back as a 500. Constraining them here turns them into a 422 that
names the field, before any query runs. ``errors(...)`` documents the 4xx answers a route
really gives, in the one error shape the app sends (``{"detail": "..."}``; 422 keeps
FastAPI's standard list of validation errors).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

BIGINT_MAX = 2**63 - 1


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def text(max_length: int = 500, *, min_length: int = 1) -> Any:
    """A free-text type: stripped, no NUL, bounded. ``text(200)`` for a name."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(_no_nul),
    ]


Text = text(500)
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX, description="a record id")]


class ErrorBody(BaseModel):
    """Every 4xx but 422: one human-readable sentence."""

    detail: str


_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Forbidden (role or CSRF token)",
    404: "Not found (or not visible to the caller's team)",
    409: "Conflicts with the record's current state",
    429: "Too many attempts",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: the listed 4xx codes with the error body."""
    return {code: {"model": ErrorBody, "description": _TITLES.get(code, "Error")} for code in codes}
