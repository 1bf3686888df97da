"""What every route module shares: a transaction per request, the clock, and 404 helpers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import psycopg
from fastapi import Depends, HTTPException, Request, status

from dosewatch.clock import Clock
from dosewatch.db import DbConn, audit, registry

log = logging.getLogger(__name__)


def db(request: Request) -> Iterator[DbConn]:
    """One transaction per request. Audit rows that must outlive a failed request (a denied
    cross-team read answers 404 and rolls back) are written after it, in their own."""
    deferred: list[audit.Entry] = []
    request.state.audit_deferred = deferred
    with request.app.state.pool.connection() as conn:
        try:
            with conn.transaction():
                yield conn
        finally:
            if deferred:
                try:
                    with conn.transaction():
                        for entry in deferred:
                            audit.record(conn, entry)
                except psycopg.Error:
                    log.exception("could not write %d audit row(s)", len(deferred))


def clock(request: Request) -> Clock:
    return request.app.state.clock  # type: ignore[no-any-return]


# scope="function": the transaction commits (or rolls back) when the route returns, before the
# response is sent, so a client never sees a success that is not yet committed.
Db = Annotated[DbConn, Depends(db, scope="function")]
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
