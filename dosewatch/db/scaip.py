"""SQL of SCAIP forwarding: per-team settings and the outbox of forwards (typed rows).

Same pattern as the other outboxes: claim under a lease with ``FOR UPDATE SKIP LOCKED``, send
with no lock held, record the centre's answer. One forward per alarm (``UNIQUE (alarm_id)``),
so however many processes fan the same event out, the centre gets one reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dosewatch.db import DbConn

LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Settings:
    team_id: int
    centre_uri: str
    controller_id: str
    kinds: list[str]
    active: bool
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class Forward:
    id: int
    alarm_id: int
    ref: str
    centre_uri: str
    body: bytes
    attempts: int


@dataclass(frozen=True)
class ForwardRow:
    id: int
    alarm_id: int
    team_id: int
    ref: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    received_at: datetime | None
    last_code: int | None
    last_reason: str | None


_COLUMNS = "team_id, centre_uri, controller_id, kinds, active, updated_at, updated_by"


def put_settings(
    conn: DbConn, team_id: int, *, centre_uri: str, controller_id: str, kinds: list[str],
    active: bool, by: str, now: datetime,
) -> Settings:  # fmt: skip
    row = conn.execute(
        f"INSERT INTO scaip_settings ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (team_id) DO UPDATE SET centre_uri = excluded.centre_uri,"
        " controller_id = excluded.controller_id, kinds = excluded.kinds,"
        " active = excluded.active, updated_at = excluded.updated_at,"
        f" updated_by = excluded.updated_by RETURNING {_COLUMNS}",
        (team_id, centre_uri, controller_id, kinds, active, now, by),
    ).fetchone()
    assert row is not None
    return Settings(**row)


def get_settings(conn: DbConn, team_id: int) -> Settings | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM scaip_settings WHERE team_id = %s", (team_id,)
    ).fetchone()
    return None if row is None else Settings(**row)


def active_settings(conn: DbConn) -> dict[int, Settings]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM scaip_settings WHERE active").fetchall()
    return {r["team_id"]: Settings(**r) for r in rows}


def enqueue(
    conn: DbConn, items: list[tuple[int, int, str, str, bytes]], now: datetime
) -> int:
    """(alarm, team, ref, centre URI, body) rows; an alarm already forwarded is skipped."""
    if not items:
        return 0
    cur = conn.execute(
        "INSERT INTO scaip_forwards (alarm_id, team_id, ref, centre_uri, body, created_at,"
        " next_attempt_at) SELECT a, t, r, u, b, %s, %s FROM unnest(%s::bigint[],"
        " %s::bigint[], %s::text[], %s::text[], %s::bytea[]) AS x(a, t, r, u, b)"
        " ON CONFLICT (alarm_id) DO NOTHING",
        (now, now, [i[0] for i in items], [i[1] for i in items], [i[2] for i in items],
         [i[3] for i in items], [i[4] for i in items]),
    )  # fmt: skip
    return cur.rowcount


def claim(conn: DbConn, now: datetime, limit: int, lease: timedelta = LEASE) -> list[Forward]:
    rows = conn.execute(
        "UPDATE scaip_forwards SET state = 'sending', claimed_until = %(until)s,"
        " attempts = attempts + 1 WHERE id IN ("
        "   SELECT id FROM scaip_forwards WHERE next_attempt_at <= %(now)s"
        "   AND (state = 'pending' OR (state = 'sending' AND claimed_until < %(now)s))"
        "   ORDER BY next_attempt_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
        " RETURNING id, alarm_id, ref, centre_uri, body, attempts",
        {"now": now, "until": now + lease, "limit": limit},
    ).fetchall()
    return [Forward(**{**r, "body": bytes(r["body"])}) for r in sorted(rows, key=lambda r: r["id"])]


def record_received(conn: DbConn, forward_id: int, code: int, reason: str, now: datetime) -> None:
    conn.execute(
        "UPDATE scaip_forwards SET state = 'received', received_at = %s, last_code = %s,"
        " last_reason = %s, claimed_until = NULL WHERE id = %s",
        (now, code, reason[:200], forward_id),
    )


def record_failure(
    conn: DbConn, forward_id: int, code: int | None, reason: str, retry_at: datetime | None
) -> None:
    conn.execute(
        "UPDATE scaip_forwards SET state = %s, next_attempt_at = COALESCE(%s, next_attempt_at),"
        " last_code = %s, last_reason = %s, claimed_until = NULL WHERE id = %s",
        ("pending" if retry_at else "failed", retry_at, code, reason[:200], forward_id),
    )


def forwards(conn: DbConn, *, team_id: int | None, limit: int) -> list[ForwardRow]:
    rows = conn.execute(
        "SELECT id, alarm_id, team_id, ref, state, attempts, created_at, next_attempt_at,"
        " received_at, last_code, last_reason FROM scaip_forwards"
        " WHERE %(team)s::bigint IS NULL OR team_id = %(team)s ORDER BY id DESC LIMIT %(limit)s",
        {"team": team_id, "limit": limit},
    ).fetchall()
    return [ForwardRow(**r) for r in rows]
