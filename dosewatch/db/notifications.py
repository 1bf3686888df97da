"""SQL for the notification outbox.

Rows are inserted by the escalation step in the step's own transaction, keyed by an
idempotency key, so a step executed twice inserts nothing the second time. The dispatcher
claims due rows with ``FOR UPDATE SKIP LOCKED`` and marks them ``sending`` with a lease
(``claimed_until``) in a short transaction of its own, then talks to the provider with no lock
held, then records the result. A dispatcher that dies mid-send leaves a ``sending`` row whose
lease runs out; the next claim takes it again and reconciles with the provider before sending.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict

from dosewatch.db import DbConn

Row = dict[str, Any]

LEASE = timedelta(seconds=60)
# A voice or SMS that ended in one of these reached nobody.
FAILED_STATES = ("failed", "undelivered", "cancelled", "skipped")
# ... and these mean somebody was (or may have been) told, so they get the all-clear.
NOTIFIED_STATES = ("sending", "sent", "delivered", "answered", "acknowledged", "no_keypress")


def insert(
    conn: DbConn,
    *,
    alarm_id: int,
    key: str,
    purpose: str,
    channel: str,
    now: datetime,
    nurse_id: int | None = None,
    to_number: str | None = None,
    language: str = "sv",
    step: tuple[int, int] | None = None,
) -> int | None:
    """Add one notification; ``None`` if its key exists already (the step ran before)."""
    # The console shows every open alarm by itself: a console notification is delivered as
    # soon as it exists, and is kept only for the escalation timeline.
    status = "delivered" if channel == "console" else "pending"
    row = conn.execute(
        "INSERT INTO notifications (alarm_id, idempotency_key, purpose, channel, nurse_id,"
        " to_number, language, step_index, step_round, status, next_attempt_at, created_at,"
        " updated_at) VALUES (%(a)s, %(k)s, %(p)s, %(c)s, %(n)s, %(to)s, %(lang)s, %(si)s,"
        " %(sr)s, %(st)s, %(now)s, %(now)s, %(now)s)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        {
            "a": alarm_id,
            "k": key,
            "p": purpose,
            "c": channel,
            "n": nurse_id,
            "to": to_number,
            "lang": language,
            "si": step[0] if step else None,
            "sr": step[1] if step else None,
            "st": status,
            "now": now,
        },
    ).fetchone()
    return None if row is None else int(row["id"])


class OutboxRow(TypedDict):
    """A notification to insert: what an escalation step decided, keyed for idempotency."""

    alarm_id: int
    key: str
    purpose: str
    channel: str
    nurse_id: int | None
    to_number: str | None
    language: str
    step_index: int | None
    step_round: int | None


# INSERT … SELECT from one array per column (named o_a … o_sr, sent in binary: no quoting of a
# thousand keys): one statement for any number of rows. Shared with the statement that opens
# alarms together with their first step.
INSERT_UNNEST = """
INSERT INTO notifications (alarm_id, idempotency_key, purpose, channel, nurse_id, to_number,
    language, step_index, step_round, status, next_attempt_at, created_at, updated_at)
SELECT a, k, p, c, n, t, l, si, sr,
    CASE WHEN c = 'console' THEN 'delivered' ELSE 'pending' END, %(now)s, %(now)s, %(now)s
FROM unnest(%(o_a)b::bigint[], %(o_k)b::text[], %(o_p)b::text[], %(o_c)b::text[],
    %(o_n)b::bigint[], %(o_t)b::text[], %(o_l)b::text[], %(o_si)b::int[], %(o_sr)b::int[])
    AS u(a, k, p, c, n, t, l, si, sr)
"""
_PARAMS = {
    "o_a": "alarm_id", "o_k": "key", "o_p": "purpose", "o_c": "channel", "o_n": "nurse_id",
    "o_t": "to_number", "o_l": "language", "o_si": "step_index", "o_sr": "step_round",
}  # fmt: skip


def unnest_params(rows: Sequence[OutboxRow]) -> dict[str, list[Any]]:
    """The arrays :data:`INSERT_UNNEST` reads."""
    return {param: [r[col] for r in rows] for param, col in _PARAMS.items()}  # type: ignore[literal-required]


def insert_many(conn: DbConn, rows: Sequence[OutboxRow], now: datetime) -> int:
    """:func:`insert` for many rows in one statement; existing keys are skipped."""
    if not rows:
        return 0
    result = conn.execute(
        INSERT_UNNEST + " ON CONFLICT (idempotency_key) DO NOTHING",
        {"now": now, **unnest_params(rows)},
    )
    return result.rowcount


def claim(conn: DbConn, now: datetime, limit: int, lease: timedelta = LEASE) -> list[Row]:
    """Take due rows (pending, or sending with an expired lease) for this dispatcher."""
    return conn.execute(
        "WITH due AS ("
        "  SELECT id, status AS was FROM notifications"
        "  WHERE (status = 'pending' AND next_attempt_at <= %(now)s)"
        "     OR (status = 'sending' AND claimed_until < %(now)s)"
        "  ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
        " UPDATE notifications n SET"
        "  status = 'sending', claimed_until = %(until)s, updated_at = %(now)s,"
        "  attempts = n.attempts + CASE WHEN due.was = 'pending' THEN 1 ELSE 0 END"
        " FROM due WHERE n.id = due.id"
        # reclaimed: its last claimant's lease ran out mid-send; the provider may have it.
        " RETURNING n.*, due.was = 'sending' AS reclaimed",
        {"now": now, "until": now + lease, "limit": limit},
    ).fetchall()


def mark_sent(conn: DbConn, ids: Sequence[int], sid: str, bundle_key: str, now: datetime) -> None:
    conn.execute(
        "UPDATE notifications SET status = 'sent', provider_sid = %s, bundle_key = %s,"
        " sent_at = %s, claimed_until = NULL, last_error = NULL, updated_at = %s"
        " WHERE id = ANY(%s) AND status = 'sending'",
        (sid, bundle_key, now, now, list(ids)),
    )


def mark_retry(conn: DbConn, ids: Sequence[int], at: datetime, error: str, now: datetime) -> None:
    conn.execute(
        "UPDATE notifications SET status = 'pending', next_attempt_at = %s, last_error = %s,"
        " claimed_until = NULL, updated_at = %s WHERE id = ANY(%s) AND status = 'sending'",
        (at, error, now, list(ids)),
    )


def postpone(conn: DbConn, ids: Sequence[int], at: datetime, now: datetime) -> None:
    """Back to pending until ``at``, without counting an attempt (nothing was tried)."""
    conn.execute(
        "UPDATE notifications SET status = 'pending', next_attempt_at = %s,"
        " attempts = GREATEST(attempts - 1, 0), claimed_until = NULL, updated_at = %s"
        " WHERE id = ANY(%s) AND status = 'sending'",
        (at, now, list(ids)),
    )


def last_alarm_sms_at(conn: DbConn, number: str) -> datetime | None:
    row = conn.execute(
        "SELECT max(sent_at) AS at FROM notifications WHERE to_number = %s"
        " AND channel = 'sms' AND purpose = 'alarm' AND sent_at IS NOT NULL",
        (number,),
    ).fetchone()
    return None if row is None else row["at"]


def set_status(
    conn: DbConn, ids: Sequence[int], status: str, now: datetime, error: str | None = None
) -> list[Row]:
    """Set a final or provider-reported status; returns the rows changed."""
    return conn.execute(
        "UPDATE notifications SET status = %s, last_error = COALESCE(%s, last_error),"
        " claimed_until = NULL, updated_at = %s WHERE id = ANY(%s) RETURNING *",
        (status, error, now, list(ids)),
    ).fetchall()


def sids_sent_to(conn: DbConn, number: str, since: datetime) -> list[str]:
    """Provider ids already recorded for sends to ``number`` since ``since``."""
    rows = conn.execute(
        "SELECT DISTINCT provider_sid FROM notifications WHERE to_number = %s"
        " AND provider_sid IS NOT NULL AND sent_at >= %s",
        (number, since),
    ).fetchall()
    return [r["provider_sid"] for r in rows]


def by_provider_sid(conn: DbConn, sid: str) -> list[Row]:
    return conn.execute(
        "SELECT * FROM notifications WHERE provider_sid = %s ORDER BY id", (sid,)
    ).fetchall()


def get(conn: DbConn, notification_id: int) -> Row | None:
    return conn.execute("SELECT * FROM notifications WHERE id = %s", (notification_id,)).fetchone()


def cancel_pending(conn: DbConn, alarm_id: int, now: datetime) -> int:
    """Stop what has not gone out yet (the alarm stopped first)."""
    rows = conn.execute(
        "UPDATE notifications SET status = 'cancelled', updated_at = %s"
        " WHERE alarm_id = %s AND status = 'pending' AND purpose IN ('alarm', 'patient_reminder')"
        " RETURNING id",
        (now, alarm_id),
    ).fetchall()
    return len(rows)


class Notified(TypedDict):
    nurse_id: int
    to_number: str
    language: str


def notified_nurses(conn: DbConn, alarm_id: int) -> list[Notified]:
    """Each nurse who was (or may have been) told about the alarm by SMS or call, once."""
    return conn.execute(
        "SELECT DISTINCT ON (n.nurse_id) n.nurse_id, n.to_number, n.language"
        " FROM notifications n WHERE n.alarm_id = %s AND n.purpose = 'alarm'"
        " AND n.channel IN ('sms', 'voice') AND n.nurse_id IS NOT NULL"
        " AND n.status = ANY(%s) ORDER BY n.nurse_id, n.id",
        (alarm_id, list(NOTIFIED_STATES)),
    ).fetchall()


def timeline(conn: DbConn, alarm_id: int) -> list[Row]:
    """Who was notified how and when, with the delivery state: for the console."""
    return conn.execute(
        "SELECT n.id, n.purpose, n.channel, n.nurse_id, nu.name AS nurse_name, n.to_number,"
        " n.status, n.attempts, n.step_index, n.step_round, n.created_at, n.sent_at,"
        " n.updated_at, n.last_error FROM notifications n"
        " LEFT JOIN nurses nu ON nu.id = n.nurse_id WHERE n.alarm_id = %s ORDER BY n.id",
        (alarm_id,),
    ).fetchall()


def context(conn: DbConn, notification_ids: Sequence[int]) -> list[Row]:
    """What a message needs to say: the alarm, its patient, and the reply code."""
    return conn.execute(
        "SELECT n.id, n.alarm_id, n.purpose, n.channel, n.language, n.to_number,"
        " a.kind, a.priority, a.slot_due_at, a.opened_at, a.ack_code, a.resolved_by,"
        " a.outcome, a.cleared_at, p.name AS patient_name, p.address AS patient_address,"
        " p.phone AS patient_phone"
        " FROM notifications n JOIN alarms a ON a.id = n.alarm_id"
        " JOIN patients p ON p.id = a.patient_id WHERE n.id = ANY(%s) ORDER BY n.id",
        (list(notification_ids),),
    ).fetchall()
