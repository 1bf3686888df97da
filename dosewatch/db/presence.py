"""SQL for dispenser presence (online flag, last seen, clock offset) and the online history."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn
from dosewatch.domain import device_clock

# "lwt_or_topic": the value came from the `online` topic, i.e. the device's own retained '1' on
# connect or the Last Will '0' the broker publishes for it.
SOURCE_TOPIC = "lwt_or_topic"
# A live status received while not online (the heartbeat is back).
SOURCE_HEARTBEAT = "heartbeat"
# No status for the offline period (DOSEWATCH_OFFLINE_AFTER_MIN): see mark_silent_offline.
SOURCE_HEARTBEAT_TIMEOUT = "heartbeat_timeout"


def record_seen(
    conn: DbConn,
    samples_by_dispenser: dict[str, tuple[datetime, list[float]]],
    now: datetime,
) -> None:
    """Note that each dispenser was heard from at ``last_received_at``, with new clock samples.

    ``last_seen_at`` never moves backwards. Samples are merged with the stored ones by
    :func:`device_clock.add_samples`, and the estimate and flag are recomputed from them.
    """
    if not samples_by_dispenser:
        return
    ids = sorted(samples_by_dispenser)  # one lock order for every gateway: no deadlocks
    # Make every row exist, so that the next statement can lock them all (a row another gateway
    # is inserting right now is waited for, not merged over).
    conn.execute(
        "INSERT INTO dispenser_presence (dispenser_id, updated_at)"
        " SELECT id, %s FROM unnest(%s::text[]) AS u(id) ORDER BY id"
        " ON CONFLICT (dispenser_id) DO NOTHING",
        (now, ids),
    )
    stored = {
        r["dispenser_id"]: [float(x) for x in r["clock_samples"]]
        for r in conn.execute(
            "SELECT dispenser_id, clock_samples FROM dispenser_presence"
            " WHERE dispenser_id = ANY(%s) ORDER BY dispenser_id FOR UPDATE",
            (ids,),
        )
    }
    rows = []
    for d in ids:
        last_received_at, new = samples_by_dispenser[d]
        merged = device_clock.add_samples(stored.get(d, []), new)
        offset = device_clock.estimate(merged)
        rows.append(
            {
                "id": d,
                "seen_at": last_received_at,
                "samples": merged,
                "offset_s": offset,
                "flagged": device_clock.is_off(offset),
            }
        )
    # One JSON document rather than five arrays: psycopg dumps arrays element by element in
    # Python, which was a third of a 500-message batch's time.
    conn.execute(
        "UPDATE dispenser_presence p SET"
        " last_seen_at = GREATEST(p.last_seen_at, u.seen_at),"  # NULL-safe: GREATEST skips NULL
        " clock_samples = u.samples, clock_offset_s = u.offset_s, clock_flagged = u.flagged,"
        " updated_at = %s"
        " FROM jsonb_to_recordset(%s) AS"
        "   u(id text, seen_at timestamptz, samples jsonb, offset_s float8, flagged boolean)"
        " WHERE p.dispenser_id = u.id",
        (now, json_rows(rows)),
    )


def json_rows(rows: list[dict[str, Any]]) -> Jsonb:
    """Rows as one jsonb parameter, for ``jsonb_to_recordset`` (times as RFC 3339 text)."""
    return Jsonb(rows, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_default, separators=(",", ":"))


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def record_online(
    conn: DbConn, dispenser_id: str, online: bool, at: datetime, *, retained: bool = False
) -> bool:
    """Store the `online` value received at ``at``; True when it changed (and history grew).

    The broker redelivers the retained value on every subscribe, so an unchanged value is a
    no-op. A value received earlier than the stored change (two gateways racing) is ignored.
    A ``retained`` copy (old news, handed over on subscribe) is used only while nothing is known:
    it must not undo what the heartbeat decided since (a silent device marked offline).
    """
    row = conn.execute(
        "WITH changed AS ("
        "  INSERT INTO dispenser_presence AS p"
        "    (dispenser_id, online, online_changed_at, updated_at)"
        "  VALUES (%(d)s, %(online)s, %(at)s, %(at)s)"
        "  ON CONFLICT (dispenser_id) DO UPDATE SET online = excluded.online,"
        "    online_changed_at = excluded.online_changed_at, updated_at = excluded.updated_at"
        "  WHERE p.online IS DISTINCT FROM excluded.online"
        "    AND (p.online_changed_at IS NULL OR p.online_changed_at <= excluded.online_changed_at)"
        "    AND (NOT %(retained)s OR p.online IS NULL)"
        "  RETURNING dispenser_id)"
        " INSERT INTO dispenser_online_history (dispenser_id, at, online, source)"
        " SELECT dispenser_id, %(at)s, %(online)s, %(source)s FROM changed"
        " RETURNING 1",
        {
            "d": dispenser_id,
            "online": online,
            "at": at,
            "source": SOURCE_TOPIC,
            "retained": retained,
        },
    ).fetchone()
    return row is not None


def record_heartbeats(conn: DbConn, beats: dict[str, datetime]) -> list[str]:
    """Live statuses (dispenser → newest receive time): the heartbeat. Return who came online.

    ``last_status_at`` never moves backwards. A dispenser not online (offline by Last Will or by
    :func:`mark_silent_offline`, or never said) becomes online, recorded with source
    ``heartbeat``, unless the stored change is newer than the status. Call after
    :func:`record_seen` in the same transaction (it creates and locks the rows).
    """
    if not beats:
        return []
    ids = sorted(beats)
    rows = conn.execute(
        "WITH cur AS ("
        "  SELECT u.id, u.at, (p.online IS NOT TRUE AND (p.online_changed_at IS NULL"
        "    OR p.online_changed_at <= u.at)) AS flip"
        "  FROM unnest(%(ids)s::text[], %(at)s::timestamptz[]) AS u(id, at)"
        "  JOIN dispenser_presence p ON p.dispenser_id = u.id),"
        " changed AS ("
        "  UPDATE dispenser_presence p SET"
        "   last_status_at = GREATEST(p.last_status_at, cur.at),"
        "   online = CASE WHEN cur.flip THEN true ELSE p.online END,"
        "   online_changed_at = CASE WHEN cur.flip THEN cur.at ELSE p.online_changed_at END"
        "  FROM cur WHERE p.dispenser_id = cur.id"
        "  RETURNING p.dispenser_id, cur.at, cur.flip)"
        " INSERT INTO dispenser_online_history (dispenser_id, at, online, source)"
        " SELECT dispenser_id, at, true, %(source)s FROM changed WHERE flip"
        " RETURNING dispenser_id",
        {"ids": ids, "at": [beats[d] for d in ids], "source": SOURCE_HEARTBEAT},
    ).fetchall()
    return [r["dispenser_id"] for r in rows]


def mark_silent_offline(conn: DbConn, now: datetime, after: timedelta) -> list[str]:
    """Mark offline every dispenser with no live status for ``after``; return their ids.

    The periodic heartbeat check (schedule it every minute or so; ``after`` is
    ``DOSEWATCH_OFFLINE_AFTER_MIN``). A dispenser counts from its last live status, or, if it
    has sent none, from when it came online. One never heard from stays unknown (NULL). Each
    change is recorded in ``dispenser_online_history`` with source ``heartbeat_timeout``;
    running it again changes nothing. Safe to run in several processes at once.
    """
    rows = conn.execute(
        "WITH silent AS ("
        "  SELECT dispenser_id FROM dispenser_presence"
        "  WHERE online IS TRUE AND COALESCE(last_status_at, online_changed_at) < %(stale)s"
        "  ORDER BY dispenser_id FOR UPDATE SKIP LOCKED),"
        " changed AS ("
        "  UPDATE dispenser_presence p SET online = false, online_changed_at = %(now)s,"
        "   updated_at = %(now)s FROM silent WHERE p.dispenser_id = silent.dispenser_id"
        "  RETURNING p.dispenser_id)"
        " INSERT INTO dispenser_online_history (dispenser_id, at, online, source)"
        " SELECT dispenser_id, %(now)s, false, %(source)s FROM changed"
        " RETURNING dispenser_id",
        {"now": now, "stale": now - after, "source": SOURCE_HEARTBEAT_TIMEOUT},
    ).fetchall()
    return sorted(r["dispenser_id"] for r in rows)


def get_presence(conn: DbConn, dispenser_id: str) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT dispenser_id, online, online_changed_at, last_seen_at, last_status_at,"
        " clock_offset_s, clock_samples, clock_flagged, updated_at"
        " FROM dispenser_presence WHERE dispenser_id = %s",
        (dispenser_id,),
    ).fetchone()


def online_history(conn: DbConn, dispenser_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The newest changes first."""
    return conn.execute(
        "SELECT at, online, source FROM dispenser_online_history WHERE dispenser_id = %s"
        " ORDER BY at DESC LIMIT %s",
        (dispenser_id, limit),
    ).fetchall()
