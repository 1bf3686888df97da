"""What people and events do to an open alarm: acknowledge, resolve, clear.

The API, the console (through the API), an SMS reply and a keypress all call
:func:`acknowledge`; a late dose and a device condition that stopped holding both clear through
:func:`clear_alarms`. Acknowledged, cleared and resolved stay separate recorded facts
(:mod:`dosewatch.domain.alarms`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db import alarms as alarm_sql
from dosewatch.db import escalation as escalation_sql
from dosewatch.db import notifications as outbox_sql
from dosewatch.domain.alarms import AlarmState, Outcome
from dosewatch.domain.escalation import remind_at


def acknowledge(
    conn: DbConn, alarm_id: int, now: datetime, actor: str, via: str, nurse_id: int | None = None
) -> alarm_sql.AlarmRow | None:
    """A nurse has the alarm: paging stops at once and what is queued is cancelled; a reminder
    is due after the policy's ``remind_after_ack_min`` if it is still unresolved then.

    Idempotent: acknowledging again changes nothing. ``None`` if the alarm is resolved or does
    not exist.
    """
    with conn.transaction():
        done = alarm_sql.set_acknowledged(conn, alarm_id, now, actor, nurse_id)
        if done is not None:
            alarm_sql.add_history(conn, alarm_id, now, "acknowledged", actor, via)
            escalation_sql.stop(conn, alarm_id, now)
            policy = escalation_sql.policies_by_id(conn, [done["policy_id"]])[done["policy_id"]]
            alarm_sql.set_remind_at(conn, alarm_id, remind_at(policy, now))
        current = alarm_sql.get_alarm(conn, alarm_id)
    if current is None or current["state"] == AlarmState.RESOLVED:
        return None
    return current


def resolve(
    conn: DbConn,
    alarm_id: int,
    now: datetime,
    actor: str,
    via: str,
    outcome: Outcome,
    note: str | None,
    nurse_id: int | None = None,
) -> alarm_sql.AlarmRow | None:
    """Close the alarm with an outcome (also acknowledging it if nobody had). Paging stops and
    everyone paged but the resolver gets the all-clear. ``None`` if already resolved or absent."""
    with conn.transaction():
        if not alarm_sql.set_resolved(conn, alarm_id, now, actor, outcome.value, note, nurse_id):
            return None
        detail = {"outcome": outcome.value, "note": note}
        alarm_sql.add_history(conn, alarm_id, now, "resolved", actor, via, detail)
        stop_and_all_clear(conn, alarm_id, now, except_nurse=nurse_id)
        return alarm_sql.get_alarm(conn, alarm_id)


def clear_slot_alarm(conn: DbConn, slot_id: int, now: datetime, detail: dict[str, Any]) -> None:
    """The slot's cause went away (a late dose arrived)."""
    with conn.transaction():
        _cleared(conn, alarm_sql.set_cleared(conn, now, slot_id=slot_id), now, detail)


def clear_alarm(conn: DbConn, alarm_id: int, now: datetime, detail: dict[str, Any]) -> bool:
    """A device alarm's condition no longer holds. ``False``: it was cleared or resolved."""
    with conn.transaction():
        ids = alarm_sql.set_cleared(conn, now, alarm_id=alarm_id)
        _cleared(conn, ids, now, detail)
    return bool(ids)


def _cleared(conn: DbConn, ids: list[int], now: datetime, detail: dict[str, Any]) -> None:
    # Paging stops and everyone told gets the all-clear. Acknowledgement is left as it was:
    # a nurse still owes it.
    for alarm_id in ids:
        alarm_sql.add_history(conn, alarm_id, now, "cleared", "system", "automatic", detail)
        stop_and_all_clear(conn, alarm_id, now, except_nurse=None)


def stop_and_all_clear(
    conn: DbConn, alarm_id: int, now: datetime, except_nurse: int | None
) -> None:
    escalation_sql.stop(conn, alarm_id, now)
    for n in outbox_sql.notified_nurses(conn, alarm_id):
        if n["nurse_id"] == except_nurse:
            continue
        outbox_sql.insert(
            conn,
            alarm_id=alarm_id,
            key=f"allclear:{alarm_id}:{n['nurse_id']}",
            purpose="all_clear",
            channel="sms",
            now=now,
            nurse_id=n["nurse_id"],
            to_number=n["to_number"],
            language=n["language"],
        )
