"""Close dose windows: claim due slots, let the domain decide missed or unknown, open alarms.

The SQL only claims (``FOR UPDATE SKIP LOCKED``) and writes; :func:`close_window` and
:func:`is_offline` decide, so the sweep follows the same rule the unit tests pin down.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from dosewatch.db import DbConn
from dosewatch.db import opening as opening_sql
from dosewatch.domain.offline import OFFLINE_AFTER, is_offline
from dosewatch.domain.slots import SlotState, close_window
from dosewatch.usecases.opening import open_alarms, slot_subject


def close_windows(
    conn: DbConn,
    now: datetime,
    limit: int = 1000,
    offline_after: timedelta = OFFLINE_AFTER,
    randbelow: Callable[[int], int] = secrets.randbelow,
) -> tuple[int, list[int]]:
    """Close up to ``limit`` due windows in one transaction; return (slots closed, alarms)."""
    with conn.transaction():
        due = opening_sql.claim_due_slots(conn, now, limit)
        closed: list[tuple[int, str]] = []
        subjects = []
        for d in due:
            offline = is_offline(d["online"], d["last_seen_at"], now, offline_after)
            change = close_window(SlotState(d["state"]), d["window_end"], now, offline)
            if change is None:
                continue
            closed.append((d["slot_id"], change.new_state.value))
            if change.opens_alarm:
                subjects.append(
                    slot_subject(
                        d["slot_id"],
                        d["dispenser_id"],
                        d["due_at"],
                        change.new_state,
                        d["time_critical"],
                        d["patient_id"],
                        d["team_id"],
                    )
                )
        # Alarms first: their foreign-key checks then find the slot rows already locked by the
        # claim (no new lock to write); updating the slots first would make each check lock a
        # fresh row version.
        opened = open_alarms(conn, subjects, now, "automatic", randbelow)
        opening_sql.set_closed(conn, closed, now)
    return len(due), opened
