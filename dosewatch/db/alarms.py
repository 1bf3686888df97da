"""SQL for alarms and their history: set-based reads and writes, no decisions.

What an alarm is, how urgent, whose, on which policy and what its first step does is decided in
:mod:`dosewatch.domain.opening`; the use cases (:mod:`dosewatch.usecases`) call these statements
in one transaction. Exactly-once is the database's job: due slots are claimed with
``FOR UPDATE SKIP LOCKED`` (concurrent sweeps share the work instead of queueing on it), and the
partial unique indexes allow one alarm per slot and one unresolved alarm per (dispenser, kind)
however many processes race.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn

ALARM_COLUMNS = (
    "id, kind, dispenser_id, patient_id, slot_id, slot_due_at, priority, state, opened_at,"
    " acknowledged_at, acknowledged_by, cleared_at, resolved_at, resolved_by, outcome, note,"
    " team_id, next_step_at, step_index, step_round, remind_at, ack_code, acknowledged_nurse_id"
)


def training_sql(alias: str = "alarms") -> str:
    """Whether the alarm ``alias`` is a training alarm: derived from the team it pages (where
    "training" lives, :mod:`dosewatch.domain.training`), never stored on the alarm; an alarm
    that pages no team goes by its patient's team. The one copy of the rule in SQL: the console,
    the messages, the reports and the handover all use it."""
    return (
        "EXISTS (SELECT 1 FROM teams tt WHERE tt.training AND tt.id = coalesce("
        f"{alias}.team_id, (SELECT tp.team_id FROM patients tp WHERE tp.id = {alias}.patient_id)))"
    )


SELECT_ALARM = f"SELECT {ALARM_COLUMNS}, {training_sql()} AS training FROM alarms"


class AlarmRow(TypedDict):
    id: int
    kind: str
    dispenser_id: str
    patient_id: int
    slot_id: int | None
    slot_due_at: datetime | None
    priority: str
    state: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    outcome: str | None
    note: str | None
    team_id: int | None
    next_step_at: datetime | None
    step_index: int
    step_round: int
    remind_at: datetime | None
    ack_code: str | None
    acknowledged_nurse_id: int | None
    training: bool


class HistoryRow(TypedDict):
    at: datetime
    action: str
    actor: str
    via: str
    detail: dict[str, Any]


def set_cleared(
    conn: DbConn, now: datetime, *, slot_id: int | None = None, alarm_id: int | None = None
) -> list[int]:
    """Record that the cause went away; returns the alarms cleared now (unresolved ones only)."""
    rows = conn.execute(
        "UPDATE alarms SET cleared_at = %(now)s WHERE cleared_at IS NULL AND resolved_at IS NULL"
        " AND (slot_id = %(slot)s OR id = %(alarm)s) RETURNING id",
        {"now": now, "slot": slot_id, "alarm": alarm_id},
    ).fetchall()
    return [r["id"] for r in rows]


class Acknowledged(TypedDict):
    id: int
    policy_id: int | None


def set_acknowledged(
    conn: DbConn, alarm_id: int, now: datetime, actor: str, nurse_id: int | None
) -> Acknowledged | None:
    """Record the first acknowledgement of an unresolved alarm; ``None`` if there is nothing
    to record (already acknowledged, resolved, or absent)."""
    return conn.execute(
        "UPDATE alarms SET acknowledged_at = %s, acknowledged_by = %s,"
        " acknowledged_nurse_id = %s WHERE id = %s AND acknowledged_at IS NULL"
        " AND resolved_at IS NULL RETURNING id, policy_id",
        (now, actor, nurse_id, alarm_id),
    ).fetchone()


def set_remind_at(conn: DbConn, alarm_id: int, at: datetime | None) -> None:
    conn.execute("UPDATE alarms SET remind_at = %s WHERE id = %s", (at, alarm_id))


def set_resolved(
    conn: DbConn,
    alarm_id: int,
    now: datetime,
    actor: str,
    outcome: str,
    note: str | None,
    nurse_id: int | None,
) -> bool:
    """Resolve an unresolved alarm; a resolution is also an acknowledgement if none came first."""
    row = conn.execute(
        "UPDATE alarms SET resolved_at = %(now)s, resolved_by = %(actor)s, outcome = %(outcome)s,"
        " note = %(note)s, acknowledged_at = COALESCE(acknowledged_at, %(now)s),"
        " acknowledged_by = COALESCE(acknowledged_by, %(actor)s),"
        " acknowledged_nurse_id = COALESCE(acknowledged_nurse_id, %(nurse)s), remind_at = NULL"
        " WHERE id = %(id)s AND resolved_at IS NULL RETURNING id",
        {"now": now, "actor": actor, "outcome": outcome, "note": note, "id": alarm_id,
         "nurse": nurse_id},
    ).fetchone()  # fmt: skip
    return row is not None


def get_alarm(conn: DbConn, alarm_id: int) -> AlarmRow | None:
    return conn.execute(f"{SELECT_ALARM} WHERE id = %s", (alarm_id,)).fetchone()


def history(conn: DbConn, alarm_id: int) -> list[HistoryRow]:
    return conn.execute(
        "SELECT at, action, actor, via, detail FROM alarm_history WHERE alarm_id = %s"
        " ORDER BY at, id",
        (alarm_id,),
    ).fetchall()


def add_history(
    conn: DbConn,
    alarm_id: int,
    at: datetime,
    action: str,
    actor: str,
    via: str,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO alarm_history (alarm_id, at, action, actor, via, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (alarm_id, at, action, actor, via, Jsonb(detail or {})),
    )


def add_history_many(
    conn: DbConn,
    rows: list[tuple[int, dict[str, Any]]],
    at: datetime,
    action: str,
    actor: str,
    via: str,
) -> None:
    """:func:`add_history` for many alarms (one detail each) in one statement."""
    if not rows:
        return
    conn.execute(
        "INSERT INTO alarm_history (alarm_id, at, action, actor, via, detail)"
        " SELECT id, %s, %s, %s, %s, detail FROM unnest(%s::bigint[], %s::jsonb[])"
        " AS u(id, detail)",
        (at, action, actor, via, [r[0] for r in rows], [Jsonb(r[1]) for r in rows]),
    )


# --- the gateway's entry points --------------------------------------------------------------
# The gateway (being rewritten in parallel) calls these two by name. They run the use cases, so
# a dispenser's dose_not_taken opens its alarm by the same rule, with the same first step in the
# same transaction, as the sweep. The imports are local because the use cases import this
# module; once the gateway calls dosewatch.usecases directly these two can go.


def open_missed_dose_alarm(conn: DbConn, slot_id: int, now: datetime, via: str) -> int | None:
    """Open the alarm of a slot the device just closed as missed (``dose_not_taken``)."""
    from dosewatch.usecases import opening

    return opening.open_slot_alarm(conn, slot_id, now, via)


def clear_for_slot(conn: DbConn, slot_id: int, now: datetime, detail: dict[str, Any]) -> None:
    """A late dose arrived: clear the slot's alarm (paging stops, the all-clear goes out)."""
    from dosewatch.usecases import alarm_actions

    alarm_actions.clear_slot_alarm(conn, slot_id, now, detail)
