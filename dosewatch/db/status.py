"""SQL for what the gateway tracks per dispenser beyond events and presence.

- the latest status snapshot (``dispenser_latest_status``), next to the history in
  ``dispenser_status``;
- sequence gaps (``dispenser_seq``, ``dispenser_seq_gaps``; the rule is in
  :mod:`dosewatch.domain.seqgaps`);
- doses left and refills (``dispenser_supply``, ``dispenser_refills``) for the refill worklist;
- the config down-link: published vs applied schedule version (``dispenser_config_state``).

Batch-level updates lock their rows in dispenser-id order, like :mod:`dosewatch.db.presence`, so
several gateways writing at once never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from dosewatch.db import DbConn
from dosewatch.db import events as event_sql
from dosewatch.db.presence import json_rows
from dosewatch.domain.ingest import StatusRow
from dosewatch.domain.protocol import Event
from dosewatch.domain.seqgaps import Gap, SeqState, apply_seqs

Row = dict[str, Any]

# --- latest status --------------------------------------------------------------------------------


def upsert_latest_statuses(conn: DbConn, rows: Sequence[StatusRow]) -> None:
    """Keep each status as its dispenser's latest unless a newer one (by device ``at``) is
    stored. At most one row per dispenser (the plan keeps the newest), in dispenser order."""
    if not rows:
        return
    cols = [event_sql.status_row(r.status, r.received_at) for r in rows]
    conn.execute(
        "INSERT INTO dispenser_latest_status AS l (dispenser_id, at, received_at, battery_pct,"
        " on_mains, doses_left, temperature_c, firmware, rssi_dbm, schedule_version)"
        " SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::int[],"
        "   %s::boolean[], %s::int[], %s::float8[], %s::text[], %s::int[], %s::int[])"
        " ON CONFLICT (dispenser_id) DO UPDATE SET at = excluded.at,"
        " received_at = excluded.received_at, battery_pct = excluded.battery_pct,"
        " on_mains = excluded.on_mains, doses_left = excluded.doses_left,"
        " temperature_c = excluded.temperature_c, firmware = excluded.firmware,"
        " rssi_dbm = excluded.rssi_dbm, schedule_version = excluded.schedule_version"
        " WHERE l.at < excluded.at",
        tuple(list(column) for column in zip(*cols, strict=True)),
    )


def latest_status(conn: DbConn, dispenser_id: str) -> Row | None:
    return conn.execute(
        "SELECT dispenser_id, at, received_at, battery_pct, on_mains, doses_left, temperature_c,"
        " firmware, rssi_dbm, schedule_version FROM dispenser_latest_status"
        " WHERE dispenser_id = %s",
        (dispenser_id,),
    ).fetchone()


# --- sequence gaps --------------------------------------------------------------------------------


def record_seqs(conn: DbConn, seqs_by_dispenser: dict[str, list[int]], now: datetime) -> int:
    """Add newly stored event ``seq`` numbers; return how many new gaps were opened."""
    ids = sorted(d for d, s in seqs_by_dispenser.items() if s)
    if not ids:
        return 0
    # Rows inserted here are new dispensers (this batch's bounds, no gaps yet); the others are
    # locked and read. A row another gateway is inserting right now is waited for, then read.
    inserted = {
        r["dispenser_id"]
        for r in conn.execute(
            "INSERT INTO dispenser_seq (dispenser_id, min_seq, max_seq, updated_at)"
            " SELECT id, lo, hi, %s FROM jsonb_to_recordset(%s) AS u(id text, lo bigint, hi bigint)"
            " ORDER BY id ON CONFLICT (dispenser_id) DO NOTHING RETURNING dispenser_id",
            (
                now,
                json_rows(
                    [
                        {"id": d, "lo": min(seqs_by_dispenser[d]), "hi": max(seqs_by_dispenser[d])}
                        for d in ids
                    ]
                ),
            ),
        ).fetchall()
    }
    old = [d for d in ids if d not in inserted]
    states: dict[str, SeqState | None] = {d: None for d in inserted}
    if old:
        gaps: dict[str, list[Gap]] = {d: [] for d in old}
        rows = conn.execute(
            "SELECT dispenser_id, min_seq, max_seq FROM dispenser_seq"
            " WHERE dispenser_id = ANY(%s) ORDER BY dispenser_id FOR UPDATE",
            (old,),
        ).fetchall()
        for g in conn.execute(
            "SELECT dispenser_id, from_seq, to_seq, detected_at FROM dispenser_seq_gaps"
            " WHERE dispenser_id = ANY(%s)",
            (old,),
        ):
            gaps[g["dispenser_id"]].append(Gap(g["from_seq"], g["to_seq"], g["detected_at"]))
        for r in rows:
            d = r["dispenser_id"]
            states[d] = SeqState(r["min_seq"], r["max_seq"], tuple(sorted(gaps[d])))
    changed: list[tuple[str, SeqState]] = []
    opened = 0
    for d in ids:
        before = states.get(d)
        after = apply_seqs(before, seqs_by_dispenser[d], now)
        assert after is not None
        if after != before or before is None:
            changed.append((d, after))
            opened += len(set(after.gaps) - set(before.gaps if before else ()))
    if not changed:
        return 0
    changed_ids = [d for d, _ in changed]
    conn.execute(
        "UPDATE dispenser_seq s SET min_seq = u.lo, max_seq = u.hi, updated_at = %s"
        " FROM jsonb_to_recordset(%s) AS u(id text, lo bigint, hi bigint)"
        " WHERE s.dispenser_id = u.id",
        (now, json_rows([{"id": d, "lo": s.min_seq, "hi": s.max_seq} for d, s in changed])),
    )
    conn.execute("DELETE FROM dispenser_seq_gaps WHERE dispenser_id = ANY(%s)", (changed_ids,))
    flat = [(d, g) for d, s in changed for g in s.gaps]
    if flat:
        conn.execute(
            "INSERT INTO dispenser_seq_gaps (dispenser_id, from_seq, to_seq, detected_at)"
            " SELECT * FROM jsonb_to_recordset(%s)"
            "   AS u(d text, f bigint, t bigint, at timestamptz)",
            (
                json_rows(
                    [{"d": d, "f": g.from_seq, "t": g.to_seq, "at": g.detected_at} for d, g in flat]
                ),
            ),
        )
    return opened


def seq_gaps(conn: DbConn, dispenser_id: str | None = None) -> list[Row]:
    """Open gaps (possible lost events), oldest detection first; all dispensers when None."""
    return conn.execute(
        "SELECT dispenser_id, from_seq, to_seq, to_seq - from_seq + 1 AS missing, detected_at"
        " FROM dispenser_seq_gaps WHERE %(d)s::text IS NULL OR dispenser_id = %(d)s"
        " ORDER BY detected_at, dispenser_id, from_seq",
        {"d": dispenser_id},
    ).fetchall()


# --- doses left and refills -----------------------------------------------------------------------

# dispenser → (device time, doses_left, source)
Supply = dict[str, tuple[datetime, int, str]]


def note_supply(
    supply: Supply, dispenser_id: str, at: datetime, doses_left: int, source: str
) -> None:
    """Keep the newest report (by device time) per dispenser, for :func:`record_supply`."""
    old = supply.get(dispenser_id)
    if old is None or old[0] <= at:
        supply[dispenser_id] = (at, doses_left, source)


def record_supply(conn: DbConn, supply: Supply, now: datetime) -> None:
    """Store each dispenser's doses left unless a newer report (by device time) is stored."""
    if not supply:
        return
    ids = sorted(supply)
    conn.execute(
        "INSERT INTO dispenser_supply AS s (dispenser_id, doses_left, doses_left_at, source,"
        " updated_at)"
        " SELECT id, n, at, src, %s"
        " FROM jsonb_to_recordset(%s) AS u(id text, n int, at timestamptz, src text) ORDER BY id"
        " ON CONFLICT (dispenser_id) DO UPDATE SET doses_left = excluded.doses_left,"
        " doses_left_at = excluded.doses_left_at, source = excluded.source,"
        " updated_at = excluded.updated_at WHERE s.doses_left_at <= excluded.doses_left_at",
        (
            now,
            json_rows(
                [{"id": d, "n": supply[d][1], "at": supply[d][0], "src": supply[d][2]} for d in ids]
            ),
        ),
    )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def record_refill(conn: DbConn, event: Event, received_at: datetime) -> None:
    """A ``refill`` event (``detail.doses_loaded``, ``detail.staff_id``; both may be missing)."""
    staff = event.detail.get("staff_id")
    conn.execute(
        "INSERT INTO dispenser_refills (dispenser_id, event_id, at, received_at, doses_loaded,"
        " doses_left, staff_id) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            event.dispenser_id,
            event.event_id,
            event.occurred_at,
            received_at,
            _int_or_none(event.detail.get("doses_loaded")),
            event.doses_left,
            str(staff)[:200] if staff is not None else None,
        ),
    )


def refills(conn: DbConn, dispenser_id: str, limit: int = 50) -> list[Row]:
    return conn.execute(
        "SELECT event_id, at, received_at, doses_loaded, doses_left, staff_id"
        " FROM dispenser_refills WHERE dispenser_id = %s ORDER BY at DESC LIMIT %s",
        (dispenser_id, limit),
    ).fetchall()


def supply(conn: DbConn, dispenser_id: str) -> Row | None:
    return conn.execute(
        "SELECT dispenser_id, doses_left, doses_left_at, source, updated_at"
        " FROM dispenser_supply WHERE dispenser_id = %s",
        (dispenser_id,),
    ).fetchone()


def refill_worklist(conn: DbConn, at_most: int) -> list[Row]:
    """Dispensers with ``at_most`` doses left or fewer, emptiest first, with their last refill."""
    return conn.execute(
        "SELECT s.dispenser_id, d.patient_id, s.doses_left, s.doses_left_at, s.source,"
        " r.at AS last_refill_at, r.doses_loaded AS last_refill_doses_loaded,"
        " r.staff_id AS last_refill_staff_id"
        " FROM dispenser_supply s JOIN dispensers d ON d.id = s.dispenser_id"
        " LEFT JOIN LATERAL (SELECT at, doses_loaded, staff_id FROM dispenser_refills"
        "   WHERE dispenser_id = s.dispenser_id ORDER BY at DESC LIMIT 1) r ON true"
        " WHERE s.doses_left <= %s ORDER BY s.doses_left, s.dispenser_id",
        (at_most,),
    ).fetchall()


# --- config down-link -----------------------------------------------------------------------------


def record_config_published(conn: DbConn, dispenser_id: str, version: int, at: datetime) -> None:
    conn.execute(
        "INSERT INTO dispenser_config_state AS c (dispenser_id, published_version, published_at)"
        " VALUES (%s, %s, %s) ON CONFLICT (dispenser_id) DO UPDATE SET"
        " published_version = excluded.published_version, published_at = excluded.published_at",
        (dispenser_id, version, at),
    )


# dispenser → (version, server receive time, source)
Applied = dict[str, tuple[int, datetime, str]]


def note_applied(
    applied: Applied, dispenser_id: str, version: int, at: datetime, source: str
) -> None:
    old = applied.get(dispenser_id)
    if old is None or old[1] <= at:
        applied[dispenser_id] = (version, at, source)


def record_config_applied(conn: DbConn, applied: Applied) -> None:
    """The version each dispenser says it follows; the newest report (by receive time) stands."""
    if not applied:
        return
    ids = sorted(applied)
    conn.execute(
        "INSERT INTO dispenser_config_state AS c (dispenser_id, applied_version, applied_at,"
        " applied_source)"
        " SELECT id, v, at, src FROM unnest(%s::text[], %s::int[], %s::timestamptz[], %s::text[])"
        " AS u(id, v, at, src) ORDER BY id"
        " ON CONFLICT (dispenser_id) DO UPDATE SET applied_version = excluded.applied_version,"
        " applied_at = excluded.applied_at, applied_source = excluded.applied_source"
        " WHERE c.applied_at IS NULL OR c.applied_at <= excluded.applied_at",
        (
            ids,
            [applied[d][0] for d in ids],
            [applied[d][1] for d in ids],
            [applied[d][2] for d in ids],
        ),
    )


def config_state(conn: DbConn, dispenser_id: str) -> Row | None:
    return conn.execute(
        "SELECT dispenser_id, published_version, published_at, applied_version, applied_at,"
        " applied_source FROM dispenser_config_state WHERE dispenser_id = %s",
        (dispenser_id,),
    ).fetchone()


def config_out_of_date(conn: DbConn, now: datetime, after: timedelta) -> list[Row]:
    """Dispensers that have not applied their current schedule version within ``after`` of it
    being saved: the nurse console must show them as out of date.

    The current version is the highest stored; ``since`` is when it was saved (its config was
    published then). A device that applied a *different* version (older, or a newer one it
    cannot know about) is out of date too.
    """
    return conn.execute(
        "SELECT cur.dispenser_id, cur.version AS current_version, cur.created_at AS since,"
        " c.published_version, c.published_at, c.applied_version, c.applied_at"
        " FROM (SELECT DISTINCT ON (dispenser_id) dispenser_id, version, created_at"
        "       FROM schedules ORDER BY dispenser_id, version DESC) cur"
        " LEFT JOIN dispenser_config_state c ON c.dispenser_id = cur.dispenser_id"
        " WHERE c.applied_version IS DISTINCT FROM cur.version AND cur.created_at <= %s"
        " ORDER BY cur.created_at, cur.dispenser_id",
        (now - after,),
    ).fetchall()


def configs_to_publish(conn: DbConn, limit: int = 200) -> list[str]:
    """Dispensers whose current schedule version has not been published as their config."""
    rows = conn.execute(
        "SELECT cur.dispenser_id FROM (SELECT DISTINCT ON (dispenser_id) dispenser_id, version"
        "   FROM schedules ORDER BY dispenser_id, version DESC) cur"
        " LEFT JOIN dispenser_config_state c ON c.dispenser_id = cur.dispenser_id"
        " WHERE c.published_version IS DISTINCT FROM cur.version"
        " ORDER BY cur.dispenser_id LIMIT %s",
        (limit,),
    ).fetchall()
    return [r["dispenser_id"] for r in rows]
