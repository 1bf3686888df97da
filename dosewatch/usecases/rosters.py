"""Add a shift to a team's roster, with the checks that only the database can answer.

The nurse must exist, belong to the team, be active and not already be on another shift that
overlaps: checked under a lock on the nurse row, so two requests cannot both add overlapping
shifts for the same nurse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db import teams as team_sql


class ShiftRefused(Exception):
    """Why a shift cannot be added; ``clash`` when it overlaps one the nurse already has."""

    def __init__(self, message: str, clash: bool = False) -> None:
        super().__init__(message)
        self.clash = clash


def add_shift(
    conn: DbConn, team_id: int, nurse_id: int, starts_at: datetime, ends_at: datetime, role: str
) -> dict[str, Any]:
    with conn.transaction():
        nurse = team_sql.get_nurse(conn, nurse_id, lock=True)
        if nurse is None:
            raise ShiftRefused(f"nurse_id: nurse {nurse_id} does not exist")
        if nurse["team_id"] != team_id:
            raise ShiftRefused(
                f"nurse_id: nurse {nurse_id} belongs to team {nurse['team_id']}, not {team_id}"
            )
        if not nurse["active"]:
            raise ShiftRefused(f"nurse_id: nurse {nurse_id} is inactive")
        clash = team_sql.overlapping_shift(conn, nurse_id, starts_at, ends_at)
        if clash is not None:
            raise ShiftRefused(
                f"nurse {nurse_id} already has shift {clash['id']} from"
                f" {clash['starts_at'].isoformat()} to {clash['ends_at'].isoformat()}",
                clash=True,
            )
        row: dict[str, Any] = team_sql.create_shift(
            conn,
            team_id=team_id,
            nurse_id=nurse_id,
            starts_at=starts_at,
            ends_at=ends_at,
            role=role,
        )
    return row
