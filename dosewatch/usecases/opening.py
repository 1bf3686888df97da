"""Open alarms: the domain decides each one, one statement writes them with their first step.

The 08:00 rush opens thousands of alarms in one call; the cost per call is a fixed handful of
statements (team policies, the roster, which teams are training teams, policy versions, ids,
then one write of alarms, history and outbox), and per alarm only Python arithmetic. A single
``dose_not_taken`` takes the same path with one subject, so both give the same kind, priority,
team, policy and first notification, queued in the same transaction as the alarm.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime

from dosewatch.db import DbConn
from dosewatch.db import escalation as escalation_sql
from dosewatch.db import opening as opening_sql
from dosewatch.db import teams as team_sql
from dosewatch.db.notifications import OutboxRow
from dosewatch.domain import opening
from dosewatch.domain.escalation import (
    OnDuty,
    Policy,
    Position,
    first_step_needs_patient_number,
    outbox_key,
)
from dosewatch.domain.opening import Subject, applicable_policy, slot_alarm
from dosewatch.domain.slots import SlotState

log = logging.getLogger(__name__)
_FIRST = Position(0, 0)


def open_alarms(
    conn: DbConn,
    subjects: Sequence[Subject],
    now: datetime,
    via: str = "automatic",
    randbelow: Callable[[int], int] = secrets.randbelow,
) -> list[int]:
    """Open an alarm per subject (none where one exists already); return the ids opened."""
    if not subjects:
        return []
    with conn.transaction():
        teams = sorted({s.team_id for s in subjects if s.team_id is not None})
        policies: dict[int | None, Policy | None] = {None: None}
        for team, policy in escalation_sql.current_team_policies(conn, teams).items():
            policies[team] = policy
        rosters: dict[int | None, list[OnDuty]] = {}
        for team, nurses in escalation_sql.on_duty(conn, teams, now).items():
            rosters[team] = nurses
        to_remind = [
            s.patient_id
            for s in subjects
            if first_step_needs_patient_number(applicable_policy(policies.get(s.team_id)))
        ]
        numbers = escalation_sql.patient_contacts(conn, to_remind)
        # Training mode, per team: one query per batch, and one more only if a training team
        # is in it (what its rosters share with real people, never to be paged).
        training = team_sql.training_teams(conn, teams)
        real = (
            team_sql.real_numbers(conn, [n.phone for t in training for n in rosters.get(t, [])])
            if training
            else set()
        )
        decided = opening.open_alarms(
            subjects, policies, rosters, numbers, now, randbelow, training, real
        )
        # Keyed by object identity: the alarms of one team share its Policy object, and
        # hashing a nested frozen dataclass per alarm would cost more than the rest of the loop.
        distinct = {id(d.policy): d.policy for d in decided}
        versions = escalation_sql.policy_version_ids(conn, list(distinct.values()), now)
        version_of = {key: versions[policy] for key, policy in distinct.items()}
        ids = opening_sql.reserve_ids(conn, len(decided))
        rows: list[opening_sql.NewAlarm] = []
        outbox: list[OutboxRow] = []
        texts: dict[int, str] = {}  # one JSON text per shared plan, not per alarm
        for alarm_id, d in zip(ids, decided, strict=True):
            s, nxt = d.subject, d.first.next
            if id(d.first) not in texts:
                texts[id(d.first)] = opening_sql.json_text(d.first.history)
            rows.append(
                {
                    "id": alarm_id,
                    "kind": s.kind.value,
                    "dispenser_id": s.dispenser_id,
                    "patient_id": s.patient_id,
                    "slot_id": s.slot_id,
                    "slot_due_at": s.slot_due_at,
                    "priority": s.priority.value,
                    "team_id": s.team_id,
                    "policy_id": version_of[id(d.policy)],
                    "ack_code": d.ack_code,
                    "step_index": nxt.position.step_index,
                    "step_round": nxt.position.round,
                    "next_step_at": nxt.at,
                    "opened_detail": opening_sql.json_text(dict(s.detail)) if s.detail else "{}",
                    "escalated_detail": texts[id(d.first)],
                }
            )
            outbox += [
                {
                    "alarm_id": alarm_id,
                    "key": outbox_key(alarm_id, 0, _FIRST, n.key),
                    "purpose": n.purpose,
                    "channel": n.channel.value,
                    "nurse_id": n.nurse_id,
                    "to_number": n.to_number,
                    "language": n.language,
                    "step_index": 0,
                    "step_round": 0,
                }
                for n in d.first.notices
            ]
        opened = opening_sql.insert_opened(conn, rows, outbox, now, via)
    unreached = sum(1 for d in decided if d.first.history["reached_no_one"])
    if unreached:
        log.warning("%d new alarm(s): the first step reached no one", unreached)
    return opened


def slot_subject(
    slot_id: int,
    dispenser_id: str,
    due_at: datetime,
    closed_as: SlotState,
    time_critical: bool,
    patient_id: int,
    team_id: int | None,
) -> Subject:
    kind, priority = slot_alarm(closed_as, time_critical)
    return Subject(kind, priority, dispenser_id, patient_id, team_id, slot_id, due_at)


def open_slot_alarm(conn: DbConn, slot_id: int, now: datetime, via: str) -> int | None:
    """Open the alarm of one slot a device's ``dose_not_taken`` closed as missed.

    The alarm is a missed-dose alarm whatever the slot holds by now: in one batch a later
    ``dose_taken`` may already have taken the slot, and its clear follows this opening, exactly
    as when the two messages are stored one at a time (the ingest plan's order)."""
    with conn.transaction():
        row = opening_sql.slot_subject(conn, slot_id)
        if row is None:
            return None
        subject = slot_subject(
            row["slot_id"],
            row["dispenser_id"],
            row["due_at"],
            SlotState.MISSED,
            row["time_critical"],
            row["patient_id"],
            row["team_id"],
        )
        opened = open_alarms(conn, [subject], now, via)
    return opened[0] if opened else None
