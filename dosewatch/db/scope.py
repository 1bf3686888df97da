"""Team scoping: which team an object belongs to, and the team-filtered lists.

A nurse or pharmacist sees one team; a manager or admin sees all (``team_id=None`` here). Reads
of one object first ask :func:`teams_of` which team(s) own it; the web layer
(:mod:`dashboards.access`) answers 404 and audits ``denied`` when the caller's team is not
among them. Lists are filtered here, in SQL.

Ownership:

- a patient belongs to ``patients.team_id``; a dispenser, its schedules, slots, events and
  absences to its patient's team;
- an alarm to the team it paged (``alarms.team_id``, copied when it opened) and to its patient's
  current team: both may see it;
- a nurse and a shift to their ``team_id``; a team to itself.
"""

from __future__ import annotations

from typing import Any

from dosewatch.db import DbConn
from dosewatch.db.alarms import ALARM_COLUMNS, training_sql

Row = dict[str, Any]

_OWNER_SQL: dict[str, str] = {
    "patient": "SELECT ARRAY[team_id] AS teams FROM patients WHERE id = %(id)s",
    "dispenser": (
        "SELECT ARRAY[p.team_id] AS teams FROM dispensers d JOIN patients p ON p.id = d.patient_id"
        " WHERE d.id = %(id)s"
    ),
    "alarm": (
        "SELECT ARRAY[a.team_id, p.team_id] AS teams FROM alarms a"
        " JOIN patients p ON p.id = a.patient_id WHERE a.id = %(id)s"
    ),
    "absence": (
        "SELECT ARRAY[p.team_id] AS teams FROM absences ab JOIN dispensers d"
        " ON d.id = ab.dispenser_id JOIN patients p ON p.id = d.patient_id WHERE ab.id = %(id)s"
    ),
    "team": "SELECT ARRAY[id] AS teams FROM teams WHERE id = %(id)s",
    "nurse": "SELECT ARRAY[team_id] AS teams FROM nurses WHERE id = %(id)s",
    "shift": "SELECT ARRAY[team_id] AS teams FROM shifts WHERE id = %(id)s",
}
_OWNER_SQL["patient_contact"] = _OWNER_SQL["patient"]
KINDS = frozenset(_OWNER_SQL)
_INT_KINDS = KINDS - {"dispenser"}
_BIGINT = range(-(2**63), 2**63)


def teams_of(conn: DbConn, kind: str, object_id: int | str) -> set[int | None] | None:
    """The teams that own the object (``None`` in the set: no team), or ``None`` if it does not
    exist. A malformed id simply does not exist."""
    if kind in _INT_KINDS:
        try:
            object_id = int(object_id)
        except ValueError:
            return None
        if object_id not in _BIGINT:
            return None
    row = conn.execute(_OWNER_SQL[kind], {"id": object_id}).fetchone()
    return None if row is None else set(row["teams"])


def visible(teams: set[int | None], team_id: int | None) -> bool:
    """Whether a caller limited to ``team_id`` (None: all teams) may see the object."""
    return team_id is None or team_id in teams


def list_alarms(conn: DbConn, *, team_id: int | None, state: str | None, limit: int) -> list[Row]:
    return conn.execute(
        f"SELECT {_prefixed(ALARM_COLUMNS, 'a')}, {training_sql('a')} AS training FROM alarms a"
        " JOIN patients p ON p.id = a.patient_id"
        " WHERE (%(state)s::text IS NULL OR a.state = %(state)s)"
        " AND (%(team)s::bigint IS NULL OR a.team_id = %(team)s OR p.team_id = %(team)s)"
        " ORDER BY a.opened_at DESC, a.id DESC LIMIT %(limit)s",
        {"state": state, "team": team_id, "limit": limit},
    ).fetchall()


def _prefixed(columns: str, alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))
