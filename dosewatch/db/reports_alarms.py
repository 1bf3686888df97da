"""Alarm handling facts for the reports: one row per alarm opened in a period, and delivery
failures. The figures themselves are :mod:`dosewatch.domain.alarm_figures`."""

from __future__ import annotations

from datetime import datetime

from dosewatch.db import DbConn
from dosewatch.db.alarms import training_sql
from dosewatch.domain.alarm_figures import AlarmFacts

# A policy's last step of its last round was paged: a notification for it exists.
_REACHED_LAST = (
    "EXISTS (SELECT 1 FROM notifications n JOIN policy_versions pv ON pv.id = a.policy_id"
    " WHERE n.alarm_id = a.id AND n.purpose = 'alarm'"
    " AND n.step_index = jsonb_array_length(pv.body -> 'steps') - 1"
    " AND n.step_round = coalesce((pv.body ->> 'repeats')::int, 0))"
)
# Training mode: a training alarm (``a``) is in no real figure — no report, and no count in the
# console's handover. Every real figure of alarms uses this.
REAL_ALARM = f"NOT {training_sql('a')}"
_IN_SCOPE = (
    " a.opened_at >= %(since)s AND a.opened_at < %(until)s"
    " AND (%(team)s::bigint IS NULL OR a.team_id = %(team)s OR p.team_id = %(team)s)"
    f" AND {REAL_ALARM}"
)
FAILED_STATUSES = ("failed", "undelivered", "no_keypress")


def alarm_facts(
    conn: DbConn, since: datetime, until: datetime, team_id: int | None
) -> list[AlarmFacts]:
    rows = conn.execute(
        "SELECT a.id, a.kind, coalesce(a.team_id, p.team_id) AS team_id, a.opened_at,"
        # an acknowledgement recorded only on the row (no history) still counts
        " coalesce((SELECT min(h.at) FROM alarm_history h WHERE h.alarm_id = a.id"
        "   AND h.action = 'acknowledged'), a.acknowledged_at) AS first_ack_at,"
        f" a.resolved_at, a.outcome, {_REACHED_LAST} AS reached_last"
        " FROM alarms a JOIN patients p ON p.id = a.patient_id"
        f" WHERE {_IN_SCOPE} ORDER BY a.opened_at, a.id",
        {"since": since, "until": until, "team": team_id},
    ).fetchall()
    return [
        AlarmFacts(
            alarm_id=r["id"],
            kind=r["kind"],
            team_id=r["team_id"],
            opened_at=r["opened_at"],
            first_ack_at=r["first_ack_at"],
            resolved_at=r["resolved_at"],
            outcome=r["outcome"],
            reached_last_step=bool(r["reached_last"]),
        )
        for r in rows
    ]


def delivery_failures(
    conn: DbConn, since: datetime, until: datetime, team_id: int | None
) -> list[tuple[str, str, int]]:
    """(channel, status, count) of notifications that did not get through."""
    rows = conn.execute(
        "SELECT n.channel, n.status, count(*)::int AS n FROM notifications n"
        " JOIN alarms a ON a.id = n.alarm_id JOIN patients p ON p.id = a.patient_id"
        f" WHERE n.status = ANY(%(failed)s) AND {_IN_SCOPE}"
        " GROUP BY n.channel, n.status ORDER BY n.channel, n.status",
        {"since": since, "until": until, "team": team_id, "failed": list(FAILED_STATUSES)},
    ).fetchall()
    return [(r["channel"], r["status"], r["n"]) for r in rows]
