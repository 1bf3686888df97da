"""The alarm notices on channel ``dosewatch_alarms``, read in one place.

The database announces alarms when their transaction commits (``pg_notify``): a change to one
alarm as ``{id, team_id, state, priority, op, at}``, and the alarms one statement opened a
hundred at a time, per team, as ``{op: "insert", team_id, at, alarms: [{id, state, priority},
…]}`` (migration 0024: at 08:00 a notice per alarm cost every listener 100,000 messages).
:func:`alarm_notices` turns either back into one message per alarm, so a console, a bench or a
test sees the same thing whichever kind arrived.
"""

from __future__ import annotations

import json
from typing import TypedDict

CHANNEL = "dosewatch_alarms"


class AlarmNotice(TypedDict):
    """One alarm as a notice announces it. ``at`` is the database's clock when the row was
    written, in epoch milliseconds (the console measures creation-to-screen with it)."""

    id: int
    team_id: int | None
    state: str
    priority: str
    op: str  # "insert" | "update"
    at: int


def alarm_notices(payload: str) -> list[AlarmNotice]:
    """The alarms a notice's payload announces; ``ValueError`` if it is not such a notice."""
    msg = json.loads(payload)
    if not isinstance(msg, dict):
        raise ValueError("an alarm notice is a JSON object")
    try:
        base = {"team_id": msg["team_id"], "op": msg["op"], "at": msg["at"]}
        members = msg.get("alarms", [msg])
        return [
            {
                "id": int(a["id"]),
                "team_id": base["team_id"],
                "state": a["state"],
                "priority": a["priority"],
                "op": base["op"],
                "at": base["at"],
            }
            for a in members
        ]
    except (KeyError, TypeError) as e:
        raise ValueError(f"not an alarm notice: {e}") from None
