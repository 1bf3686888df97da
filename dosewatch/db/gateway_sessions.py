"""SQL for the installation's identity and the gateways' broker-session status.

The gateway writes its row (``gateway/session.py``); the health endpoint and ``/metrics`` read
every row, so a web process learns of a session conflict in a gateway process it never talks to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dosewatch.db import DbConn

SessionState = Literal["connecting", "connected", "yielded", "stopped"]


@dataclass(frozen=True)
class GatewaySession:
    client_id: str
    state: SessionState
    broker: str
    host: str
    pid: int
    since: datetime
    takeovers: int
    last_takeover_at: datetime | None
    retry_at: datetime | None
    seen_at: datetime


def installation_id(conn: DbConn) -> str:
    """This database's installation id (made at the first migrate; made here if the row is
    missing, e.g. in a test database emptied between tests)."""
    conn.execute("INSERT INTO installation DEFAULT VALUES ON CONFLICT DO NOTHING")
    row = conn.execute("SELECT id FROM installation").fetchone()
    assert row is not None
    return str(row["id"])


def record(conn: DbConn, s: GatewaySession) -> None:
    conn.execute(
        "INSERT INTO gateway_sessions (client_id, state, broker, host, pid, since, takeovers,"
        " last_takeover_at, retry_at, seen_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (client_id) DO UPDATE SET state = excluded.state,"
        " broker = excluded.broker, host = excluded.host, pid = excluded.pid,"
        " since = excluded.since, takeovers = excluded.takeovers,"
        " last_takeover_at = excluded.last_takeover_at, retry_at = excluded.retry_at,"
        " seen_at = excluded.seen_at",
        (
            s.client_id,
            s.state,
            s.broker,
            s.host,
            s.pid,
            s.since,
            s.takeovers,
            s.last_takeover_at,
            s.retry_at,
            s.seen_at,
        ),
    )


def all_sessions(conn: DbConn) -> list[GatewaySession]:
    rows = conn.execute(
        "SELECT client_id, state, broker, host, pid, since, takeovers, last_takeover_at,"
        " retry_at, seen_at FROM gateway_sessions ORDER BY client_id"
    ).fetchall()
    return [GatewaySession(**r) for r in rows]
