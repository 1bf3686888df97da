"""SQL for alarms and their history: set-based reads and writes, no decisions.

What an alarm is, how urgent, whose, on which policy and what its first step does is decided in
:mod:`dosewatch.domain.opening`; the use cases (:mod:`dosewatch.usecases`) call these statements
in one transaction. Exactly-once is the database's job: due slots are claimed with
``FOR UPDATE SKIP LOCKED`` (concurrent sweeps share the work instead of queueing on it), and the
partial unique indexes allow one alarm per slot and one unresolved alarm per (dispenser, kind)
however many processes race.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn
from dosewatch.db import notifications as outbox_sql

ALARM_COLUMNS = (
    "id, kind, dispenser_id, patient_id, slot_id, slot_due_at, priority, state, opened_at,"
    " acknowledged_at, acknowledged_by, cleared_at, resolved_at, resolved_by, outcome, note,"
    " team_id, next_step_at, step_index, step_round, remind_at, ack_code, acknowledged_nurse_id"
)


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


class HistoryRow(TypedDict):
    at: datetime
    action: str
    actor: str
    via: str
    detail: dict[str, Any]


class DueSlot(TypedDict):
    """A pending slot whose window has closed, with what closing it and opening its alarm need:
    the dispenser's presence (offline or not) and the patient and their team."""

    slot_id: int
    dispenser_id: str
    due_at: datetime
    window_end: datetime
    time_critical: bool
    state: str
    patient_id: int
    team_id: int | None
    online: bool | None
    last_seen_at: datetime | None


class NewAlarm(TypedDict):
    """One row of :func:`insert_opened`: an alarm as the domain decided it."""

    id: int
    kind: str
    dispenser_id: str
    patient_id: int
    slot_id: int | None
    slot_due_at: datetime | None
    priority: str
    team_id: int | None
    policy_id: int
    ack_code: str
    step_index: int
    step_round: int
    next_step_at: datetime | None
    opened_detail: str  # JSON text of the 'opened' history row's detail
    escalated_detail: str  # JSON text of the first step's 'escalated' history row


_DUE_SLOTS = """
SELECT s.id AS slot_id, s.dispenser_id, s.due_at, s.window_end, s.time_critical, s.state,
       d.patient_id, pa.team_id, p.online, p.last_seen_at
FROM dose_slots s
JOIN dispensers d ON d.id = s.dispenser_id
JOIN patients pa ON pa.id = d.patient_id
LEFT JOIN dispenser_presence p ON p.dispenser_id = s.dispenser_id
WHERE s.state = 'pending' AND s.window_end <= %(now)s
ORDER BY s.window_end LIMIT %(limit)s
FOR UPDATE OF s SKIP LOCKED
"""


def claim_due_slots(conn: DbConn, now: datetime, limit: int) -> list[DueSlot]:
    """Lock up to ``limit`` pending slots whose window has closed (oldest first); other
    processes skip them. What each becomes is for :func:`dosewatch.domain.slots.close_window`."""
    return conn.execute(_DUE_SLOTS, {"now": now, "limit": limit}).fetchall()


def set_closed(conn: DbConn, closed: Sequence[tuple[int, str]], now: datetime) -> None:
    """Write the decided states, ``(slot_id, state)``, of claimed slots in one statement."""
    if not closed:
        return
    conn.execute(
        "UPDATE dose_slots s SET state = u.state, closed_at = %s"
        " FROM unnest(%b::bigint[], %b::text[]) AS u(id, state) WHERE s.id = u.id",
        (now, [c[0] for c in closed], [c[1] for c in closed]),
    )


class SlotSubjectRow(TypedDict):
    slot_id: int
    dispenser_id: str
    due_at: datetime
    time_critical: bool
    state: str
    patient_id: int
    team_id: int | None


def slot_subject(conn: DbConn, slot_id: int) -> SlotSubjectRow | None:
    """A slot with its patient and team, for opening its alarm outside the sweep."""
    return conn.execute(
        "SELECT s.id AS slot_id, s.dispenser_id, s.due_at, s.time_critical, s.state,"
        " d.patient_id, pa.team_id FROM dose_slots s JOIN dispensers d ON d.id = s.dispenser_id"
        " JOIN patients pa ON pa.id = d.patient_id WHERE s.id = %s",
        (slot_id,),
    ).fetchone()


def reserve_ids(conn: DbConn, n: int) -> list[int]:
    """``n`` alarm ids, so the outbox keys (which name the alarm) are built before the insert."""
    rows = conn.execute(
        "SELECT nextval(pg_get_serial_sequence('alarms', 'id')) AS id FROM generate_series(1, %s)",
        (n,),
    ).fetchall()
    return [r["id"] for r in rows]


_ALARM_COLS = (
    "id", "kind", "dispenser_id", "patient_id", "slot_id", "slot_due_at", "priority", "team_id",
    "policy_id", "ack_code", "step_index", "step_round", "next_step_at",
)  # fmt: skip
_ALARM_TYPES = (
    "bigint", "text", "text", "bigint", "bigint", "timestamptz", "text", "bigint", "bigint",
    "text", "int", "int", "timestamptz",
)  # fmt: skip

# %(name)b: arrays go in binary, so a thousand texts and timestamps need no quoting or parsing.
_UNNEST = ", ".join(f"%({c})b::{t}[]" for c, t in zip(_ALARM_COLS, _ALARM_TYPES, strict=True))

# The alarms, their 'opened' and 'escalated' history rows and the first step's outbox rows, in
# one statement. ON CONFLICT without a target: a slot that has its alarm already, or a dispenser
# with this kind still unresolved, gets none — and then no history or outbox rows either.
_INSERT_OPENED = f"""
WITH new AS (
    INSERT INTO alarms ({", ".join(_ALARM_COLS)}, opened_at)
    SELECT *, %(now)s FROM unnest({_UNNEST})
    ON CONFLICT DO NOTHING RETURNING id
), hist AS (
    INSERT INTO alarm_history (alarm_id, at, action, actor, via, detail)
    SELECT h.id, %(now)s, x.action, 'system', x.via, (%(details)b::jsonb[])[x.detail]
    FROM unnest(%(id)b::bigint[], %(opened_detail)b::int[], %(escalated_detail)b::int[])
         AS h(id, opened, escalated)
    JOIN new ON new.id = h.id
    CROSS JOIN LATERAL (VALUES (0, 'opened', %(via)s, h.opened),
                               (1, 'escalated', 'automatic', h.escalated))
         AS x(ord, action, via, detail)
    ORDER BY h.id, x.ord
), outbox AS (
    {outbox_sql.INSERT_UNNEST} WHERE u.a IN (SELECT id FROM new)
    ON CONFLICT (idempotency_key) DO NOTHING
)
SELECT id FROM new
"""


def insert_opened(
    conn: DbConn,
    alarms: Sequence[NewAlarm],
    outbox: Sequence[outbox_sql.OutboxRow],
    now: datetime,
    via: str,
) -> list[int]:
    """Open decided alarms with their first step; return the ids actually opened."""
    if not alarms:
        return []
    params: dict[str, Any] = {c: [a[c] for a in alarms] for c in _ALARM_COLS}  # type: ignore[literal-required]
    # History details go once each, with a 1-based index per alarm: a thousand alarms of one
    # team share one first-step detail, and quoting a JSON text per element is the costly part.
    details: dict[str, int] = {}
    for key in ("opened_detail", "escalated_detail"):
        params[key] = [details.setdefault(a[key], len(details) + 1) for a in alarms]
    params.update(details=[Jsonb(json.loads(d)) for d in details], now=now, via=via)
    params.update(outbox_sql.unnest_params(outbox))
    return [r["id"] for r in conn.execute(_INSERT_OPENED, params).fetchall()]


def json_text(detail: dict[str, Any]) -> str:
    """A history detail as JSON text (sent as text and cast in SQL, so one plan's detail is
    serialised once for every alarm that shares it)."""
    return json.dumps(detail, separators=(",", ":"), default=str)


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
    return conn.execute(f"SELECT {ALARM_COLUMNS} FROM alarms WHERE id = %s", (alarm_id,)).fetchone()


def list_alarms(conn: DbConn, *, state: str | None, limit: int) -> list[AlarmRow]:
    return conn.execute(
        f"SELECT {ALARM_COLUMNS} FROM alarms WHERE %(state)b::text IS NULL OR state = %(state)s"
        " ORDER BY opened_at DESC, id DESC LIMIT %(limit)s",
        {"state": state, "limit": limit},
    ).fetchall()


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
