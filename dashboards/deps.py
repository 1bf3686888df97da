"""What every route module shares: a transaction per request, the clock, and 404 helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

from fastapi import Depends, HTTPException, Request, status

from dosewatch.clock import Clock
from dosewatch.db import DbConn, registry


def db(request: Request) -> Iterator[DbConn]:
    with request.app.state.pool.connection() as conn, conn.transaction():
        yield conn


def clock(request: Request) -> Clock:
    return request.app.state.clock  # type: ignore[no-any-return]


Db = Annotated[DbConn, Depends(db)]
Now = Annotated[Clock, Depends(clock)]


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} does not exist")


def raise_(exc: HTTPException) -> NoReturn:
    raise exc


def dispenser_or_404(conn: DbConn, dispenser_id: str) -> dict[str, Any]:
    row = registry.get_dispenser(conn, dispenser_id)
    if row is None:
        raise not_found(f"dispenser {dispenser_id!r}")
    return row  # type: ignore[no-any-return]
