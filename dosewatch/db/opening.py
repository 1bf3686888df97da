"""SQL for closing windows and opening alarms: set-based claims and writes, no decisions.

What each closed slot becomes is :func:`dosewatch.domain.slots.close_window`'s decision, and
what each new alarm is (kind, priority, reply code, team, policy version, first step) is
:mod:`dosewatch.domain.opening`'s; :mod:`dosewatch.usecases.windows` and
:mod:`dosewatch.usecases.opening` call these statements in one transaction. A batch costs a
fixed handful of statements however many alarms it opens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn, packed
from dosewatch.db import notifications as outbox_sql


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
    # One statement per state (missed, unknown: one or two), each a lookup of its ids in the
    # primary key. Joining an unnest of (id, state) instead made the planner hash the whole
    # slot table on every batch (56 ms of a 2,000-slot batch on 100,000 slots).
    by_state: dict[str, list[int]] = {}
    for slot_id, state in closed:
        by_state.setdefault(state, []).append(slot_id)
    for state, ids in by_state.items():
        conn.execute(
            "UPDATE dose_slots SET state = %s, closed_at = %s WHERE id = ANY(%b::bigint[])",
            (state, now, packed.array("bigint", ids)),
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
    # The sequence is looked up once: nextval() of its name would parse the name per id
    # (3 µs an alarm, against 0.3 µs by regclass).
    rows = conn.execute(
        "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('alarms', 'id')::regclass AS seq)"
        " SELECT nextval(s.seq) AS id FROM s, generate_series(1, %s)",
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

# The array parameters of outbox_sql.INSERT_UNNEST, by the type it casts each to.
_OUTBOX_TYPES = {
    "o_a": "bigint", "o_k": "text", "o_p": "text", "o_c": "text", "o_n": "bigint",
    "o_t": "text", "o_l": "text", "o_si": "int", "o_sr": "int",
}  # fmt: skip

# %(name)b: arrays go in binary (packed.array), so a thousand texts and timestamps need no
# quoting or parsing, and no dumping element by element in Python.
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
    params: dict[str, Any] = {
        c: packed.array(t, [a[c] for a in alarms])  # type: ignore[literal-required]
        for c, t in zip(_ALARM_COLS, _ALARM_TYPES, strict=True)
    }
    # History details go once each, with a 1-based index per alarm: a thousand alarms of one
    # team share one first-step detail, and quoting a JSON text per element is the costly part.
    details: dict[str, int] = {}
    for key in ("opened_detail", "escalated_detail"):
        params[key] = packed.array(
            "int", [details.setdefault(a[key], len(details) + 1) for a in alarms]
        )
    params.update(details=[Jsonb(json.loads(d)) for d in details], now=now, via=via)
    params.update(
        (name, packed.array(_OUTBOX_TYPES[name], values))
        for name, values in outbox_sql.unnest_params(outbox).items()
    )
    return [r["id"] for r in conn.execute(_INSERT_OPENED, params).fetchall()]


def json_text(detail: dict[str, Any]) -> str:
    """A history detail as JSON text (sent as text and cast in SQL, so one plan's detail is
    serialised once for every alarm that shares it)."""
    return json.dumps(detail, separators=(",", ":"), default=str)


# Two-key advisory locks (class, slot): a connection draining a backlog of due windows holds one
# slot of DOSEWATCH_SWEEP_CONNECTIONS for as long as it drains.
_DRAIN_CLASS = 0x6472616E  # "dran"


def take_drain_slot(conn: DbConn, slots: int) -> int | None:
    """Take a free one of ``slots`` drain slots for this session; None when all are held.

    Session-level (a drain spans many transactions): :func:`release_drain_slot` must follow on
    the same connection before it goes back to a pool. A process that dies releases its slots
    with its connections."""
    for slot in range(slots):
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s) AS got", (_DRAIN_CLASS, slot)
        ).fetchone()
        if row is not None and row["got"]:
            return slot
    return None


def release_drain_slot(conn: DbConn, slot: int) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_DRAIN_CLASS, slot))


def next_close(conn: DbConn, after: datetime) -> datetime | None:
    """When the next pending window closes, after ``after`` (the partial index on pending
    slots' window ends: one index entry read)."""
    row = conn.execute(
        "SELECT min(window_end) AS at FROM dose_slots WHERE state = 'pending' AND window_end > %s",
        (after,),
    ).fetchone()
    return None if row is None else row["at"]
