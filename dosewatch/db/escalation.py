"""SQL for the escalation timer on alarms, the roster lookup, and stopping an escalation.

The durable timer is ``alarms.next_step_at``. :func:`claim_due` takes alarms whose step is due
with ``FOR UPDATE SKIP LOCKED``, so any number of alarm processes can sweep at once: each alarm
is worked by one of them, and the row lock is held until that step's notifications are in the
outbox and the timer has moved, all in one transaction. A process killed mid-step rolls back;
the next sweep does the step again, and the outbox's idempotency keys keep it from doubling.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypedDict

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn
from dosewatch.db import notifications as outbox_sql
from dosewatch.domain.escalation import OnDuty, Policy, policy_of


class DueAlarm(TypedDict):
    id: int
    kind: str
    patient_id: int
    team_id: int | None
    policy_id: int | None  # None: an alarm from before policy versions, on the default
    step_index: int
    step_round: int
    epoch: int
    next_step_at: datetime
    acknowledged_at: datetime | None
    cleared_at: datetime | None
    resolved_at: datetime | None


class ReminderDue(TypedDict):
    id: int
    team_id: int | None
    policy_id: int | None
    acknowledged_by: str | None
    acknowledged_nurse_id: int | None


class NurseRow(TypedDict):
    id: int
    team_id: int
    name: str
    phone: str
    language: str
    active: bool


class ReplyAlarm(TypedDict):
    id: int


def claim_due(conn: DbConn, now: datetime, limit: int) -> list[DueAlarm]:
    return conn.execute(
        "SELECT id, kind, patient_id, team_id, policy_id, step_index, step_round, epoch,"
        " next_step_at, acknowledged_at, cleared_at, resolved_at FROM alarms"
        " WHERE next_step_at <= %s ORDER BY next_step_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
        (now, limit),
    ).fetchall()


def current_team_policies(conn: DbConn, team_ids: Sequence[int]) -> dict[int, Policy]:
    """Each team's current (highest) policy version; a team without one is left out."""
    if not team_ids:
        return {}
    rows = conn.execute(
        "SELECT DISTINCT ON (team_id) team_id, policy FROM escalation_policies"
        " WHERE team_id = ANY(%s) ORDER BY team_id, version DESC",
        (list(team_ids),),
    ).fetchall()
    return {r["team_id"]: Policy.from_json(r["policy"]) for r in rows}


_VERSION_IDS = """
WITH wanted AS (SELECT body, ord FROM unnest(%(bodies)s::jsonb[]) WITH ORDINALITY AS u(body, ord)),
ins AS (
    INSERT INTO policy_versions (body, created_at) SELECT DISTINCT body, %(now)s::timestamptz
    FROM wanted ON CONFLICT (digest) DO NOTHING RETURNING id, digest)
SELECT w.ord, COALESCE(ins.id, pv.id) AS id FROM wanted w
LEFT JOIN ins ON ins.digest = md5(w.body::text)
LEFT JOIN policy_versions pv ON pv.digest = md5(w.body::text)
"""


def policy_version_ids(
    conn: DbConn, policies: Sequence[Policy], now: datetime
) -> dict[Policy, int]:
    """The immutable stored version of each policy (stored now if new), found by content.

    An alarm references one of these instead of carrying its own copy: one row per distinct
    policy, not a JSON document per alarm. A version another process stores at this very
    instant is invisible to this statement's snapshot; asking again, in a new statement, finds
    it.
    """
    found: dict[Policy, int] = {}
    for _ in range(3):
        missing = [p for p in dict.fromkeys(policies) if p not in found]
        if not missing:
            return found
        rows = conn.execute(
            _VERSION_IDS, {"bodies": [Jsonb(p.to_json()) for p in missing], "now": now}
        ).fetchall()
        found.update({missing[r["ord"] - 1]: r["id"] for r in rows if r["id"] is not None})
    if any(p not in found for p in policies):
        raise RuntimeError("a policy version could neither be stored nor found")
    return found


def policies_by_id(conn: DbConn, ids: Sequence[int | None]) -> dict[int | None, Policy]:
    """The policy of each version id; ``None`` (an alarm from before versions) is the default."""
    wanted = sorted({i for i in ids if i is not None})
    out: dict[int | None, Policy] = {None: policy_of(None)}
    if wanted:
        rows = conn.execute(
            "SELECT id, body FROM policy_versions WHERE id = ANY(%s)", (wanted,)
        ).fetchall()
        out.update({r["id"]: Policy.from_json(r["body"]) for r in rows})
    return out


def on_duty(conn: DbConn, team_ids: Sequence[int | None], at: datetime) -> dict[int, list[OnDuty]]:
    """Active nurses of each team whose shift covers ``at``, by team."""
    teams = sorted({t for t in team_ids if t is not None})
    if not teams:
        return {}
    rows = conn.execute(
        "SELECT s.team_id, n.id AS nurse_id, s.role, n.phone, n.language FROM shifts s"
        " JOIN nurses n ON n.id = s.nurse_id"
        " WHERE s.team_id = ANY(%s) AND s.starts_at <= %s AND %s < s.ends_at AND n.active"
        " ORDER BY s.team_id, s.role, n.id",
        (teams, at, at),
    ).fetchall()
    out: dict[int, list[OnDuty]] = {}
    for r in rows:
        out.setdefault(r["team_id"], []).append(
            OnDuty(r["nurse_id"], r["role"], r["phone"], r["language"])
        )
    return out


def patient_contact(conn: DbConn, patient_id: int) -> str | None:
    """The number for a patient reminder, only if consent is recorded."""
    return patient_contacts(conn, [patient_id]).get(patient_id)


def patient_contacts(conn: DbConn, patient_ids: Sequence[int]) -> dict[int, str | None]:
    """The numbers for patient reminders, only where consent is recorded."""
    if not patient_ids:
        return {}
    rows = conn.execute(
        "SELECT id, contact_phone FROM patients WHERE id = ANY(%s)"
        " AND contact_sms_consent_at IS NOT NULL",
        (sorted(set(patient_ids)),),
    ).fetchall()
    return {r["id"]: r["contact_phone"] for r in rows}


def set_positions(conn: DbConn, rows: Sequence[tuple[int, int, int, datetime | None]]) -> None:
    """Move many alarms' escalation timers in one statement: (id, step, round, next at)."""
    if not rows:
        return
    conn.execute(
        "UPDATE alarms a SET step_index = u.si, step_round = u.sr, next_step_at = u.at"
        " FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::timestamptz[]) AS u(id, si, sr, at)"
        " WHERE a.id = u.id",
        ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]),
    )


def stop(conn: DbConn, alarm_id: int, now: datetime) -> int:
    """No more steps, and nothing still queued for this alarm goes out. Returns cancelled."""
    conn.execute("UPDATE alarms SET next_step_at = NULL WHERE id = %s", (alarm_id,))
    return outbox_sql.cancel_pending(conn, alarm_id, now)


def advance_now(conn: DbConn, alarm_id: int, now: datetime) -> bool:
    """Bring the next step forward to ``now`` (a notification failed for good)."""
    row = conn.execute(
        "UPDATE alarms SET next_step_at = %s WHERE id = %s AND next_step_at > %s"
        " AND acknowledged_at IS NULL AND cleared_at IS NULL AND resolved_at IS NULL"
        " RETURNING id",
        (now, alarm_id, now),
    ).fetchone()
    return row is not None


def claim_reminders(conn: DbConn, now: datetime, limit: int) -> list[ReminderDue]:
    return conn.execute(
        "SELECT id, team_id, policy_id, acknowledged_by, acknowledged_nurse_id FROM alarms"
        " WHERE remind_at <= %s AND resolved_at IS NULL"
        " ORDER BY remind_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
        (now, limit),
    ).fetchall()


def reminded(conn: DbConn, alarm_id: int) -> None:
    conn.execute("UPDATE alarms SET remind_at = NULL WHERE id = %s", (alarm_id,))


def reopen(conn: DbConn, alarm_id: int, now: datetime) -> None:
    """Take the acknowledgement back and page again from the first step, in a new epoch (so the
    outbox keys differ from the first time round)."""
    conn.execute(
        "UPDATE alarms SET remind_at = NULL, acknowledged_at = NULL, acknowledged_by = NULL,"
        " acknowledged_nurse_id = NULL, step_index = 0, step_round = 0, epoch = epoch + 1,"
        " next_step_at = %s WHERE id = %s",
        (now, alarm_id),
    )


def nurse(conn: DbConn, nurse_id: int) -> NurseRow | None:
    return conn.execute(
        "SELECT id, team_id, name, phone, language, active FROM nurses WHERE id = %s",
        (nurse_id,),
    ).fetchone()


def nurse_by_phone(conn: DbConn, phone: str) -> list[NurseRow]:
    return conn.execute(
        "SELECT id, team_id, name, phone, language, active FROM nurses WHERE phone = %s AND active",
        (phone,),
    ).fetchall()


def alarm_for_reply(conn: DbConn, nurse_id: int, code: str | None) -> list[ReplyAlarm]:
    """Unacknowledged alarms this nurse was sent, matching the reply code if one was given."""
    return conn.execute(
        "SELECT DISTINCT a.id FROM alarms a JOIN notifications n ON n.alarm_id = a.id"
        " WHERE n.nurse_id = %s AND n.purpose = 'alarm' AND a.acknowledged_at IS NULL"
        " AND a.resolved_at IS NULL AND (%s::text IS NULL OR a.ack_code = %s) ORDER BY a.id",
        (nurse_id, code, code),
    ).fetchall()
