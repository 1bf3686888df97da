"""SQL for what notifications may say: each team's level of detail, and the facts of an alarm.

The level (``teams.notification_detail``, migration 0010) is read together with the alarm in
the same query the message is built from, so a team that changes it changes every message sent
from then on, including those already queued. Changing it stamps who and when on the team row
(what GET answers); the request that changes it also writes the audit log, in the same
transaction (:mod:`dashboards.privacy_api`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db.alarms import training_sql
from dosewatch.domain.disclosure import Detail, Patient
from dosewatch.messages import AlarmFacts


@dataclass(frozen=True)
class TeamDetail:
    team_id: int
    detail: Detail
    changed_at: datetime | None
    changed_by: str | None


_FACTS = (
    f"SELECT {training_sql('a')} AS training,"
    " a.id AS alarm_id, a.kind, a.state, a.slot_due_at, a.opened_at, a.cleared_at,"
    " a.outcome, a.resolved_by, a.ack_code, p.id AS patient_id, p.name, p.address, p.district,"
    # A patient with no team (or an alarm from before teams) gets the safe default.
    " COALESCE(t.notification_detail, 'minimal') AS detail"
    " FROM alarms a JOIN patients p ON p.id = a.patient_id"
    " LEFT JOIN teams t ON t.id = COALESCE(a.team_id, p.team_id)"
)


def _facts(row: dict[str, Any]) -> AlarmFacts:
    return AlarmFacts(
        alarm_id=row["alarm_id"],
        kind=row["kind"],
        state=row["state"],
        slot_due_at=row["slot_due_at"],
        opened_at=row["opened_at"],
        cleared_at=row["cleared_at"],
        outcome=row["outcome"],
        resolved_by=row["resolved_by"],
        ack_code=row["ack_code"],
        patient=Patient(row["patient_id"], row["name"], row["address"], row["district"]),
        detail=Detail(row["detail"]),
        training=row["training"],
    )


def for_notifications(conn: DbConn, notification_ids: Sequence[int]) -> dict[int, AlarmFacts]:
    """The facts of each notification's alarm, by notification id."""
    rows = conn.execute(
        "SELECT n.id AS notification_id, f.* FROM notifications n"
        f" JOIN LATERAL ({_FACTS} WHERE a.id = n.alarm_id) f ON true"
        " WHERE n.id = ANY(%s) ORDER BY n.id",
        (list(notification_ids),),
    ).fetchall()
    return {r["notification_id"]: _facts(r) for r in rows}


def for_alarm(conn: DbConn, alarm_id: int) -> AlarmFacts | None:
    row = conn.execute(f"{_FACTS} WHERE a.id = %s", (alarm_id,)).fetchone()
    return None if row is None else _facts(row)


def _team_detail(row: dict[str, Any]) -> TeamDetail:
    return TeamDetail(
        row["id"],
        Detail(row["notification_detail"]),
        row["notification_detail_changed_at"],
        row["notification_detail_changed_by"],
    )


_TEAM_COLUMNS = (
    "id, notification_detail, notification_detail_changed_at, notification_detail_changed_by"
)


def team_detail(conn: DbConn, team_id: int) -> TeamDetail | None:
    row = conn.execute(f"SELECT {_TEAM_COLUMNS} FROM teams WHERE id = %s", (team_id,)).fetchone()
    return None if row is None else _team_detail(row)


def set_team_detail(
    conn: DbConn, team_id: int, detail: Detail, by: str, now: datetime
) -> tuple[TeamDetail, Detail] | None:
    """Store the team's level; returns it and the level before (``None``: no such team).
    Setting the level it already has changes nothing, not even who set it last."""
    before = conn.execute(
        "SELECT notification_detail FROM teams WHERE id = %s FOR UPDATE", (team_id,)
    ).fetchone()
    if before is None:
        return None
    if before["notification_detail"] != detail.value:
        conn.execute(
            "UPDATE teams SET notification_detail = %s, notification_detail_changed_at = %s,"
            " notification_detail_changed_by = %s WHERE id = %s",
            (detail.value, now, by, team_id),
        )
    current = team_detail(conn, team_id)
    assert current is not None  # the row is locked: it cannot have gone
    return current, Detail(before["notification_detail"])
