"""Training mode: mark a team as training, trigger a practice alarm, set up a practice team.

A triggered alarm is opened by :func:`dosewatch.usecases.opening.open_alarms`, the one opening
use case of every real alarm: it gets its kind and priority from the real rules, its team's
policy version, a reply code and its first step in the same transaction, so the console, the
escalation and the SMS behave exactly as on a real night. What keeps it apart is in
:mod:`dosewatch.domain.training`: the steps of a training team's alarms are screened (no real
number is paged), and everything that reads an alarm derives "training" from its team.

Refusals are exceptions the entry points turn into their own answers (the API's 404 and 409,
the CLI's one-line error): :class:`NotFound` and :class:`Refused`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from dosewatch.db import DbConn, registry
from dosewatch.db import teams as team_sql
from dosewatch.domain import training
from dosewatch.domain.training_trigger import TriggerKind, trigger_refusal, trigger_subject
from dosewatch.usecases import opening

VIA = "training"  # the 'opened' history row's via: a trainer, not a device or a sweep


class NotFound(LookupError):
    """The dispenser, team or patient does not exist."""


class Refused(ValueError):
    """The change or trigger breaks a training rule; the message says which, in one sentence."""


def trigger(conn: DbConn, dispenser_id: str, kind: TriggerKind, now: datetime, by: str) -> int:
    """Open a training alarm of ``kind`` on a training team's dispenser; return its id."""
    with conn.transaction():
        row = team_sql.dispenser_team(conn, dispenser_id)
        if row is None:
            raise NotFound(f"dispenser {dispenser_id} does not exist")
        refusal = trigger_refusal(row["training"])
        if refusal is not None or row["team_id"] is None:
            raise Refused(f"dispenser {dispenser_id} is not a training team's: {refusal}")
        subject = trigger_subject(kind, dispenser_id, row["patient_id"], row["team_id"], now, by)
        opened = opening.open_alarms(conn, [subject], now, VIA)
    if not opened:
        raise Refused(
            f"dispenser {dispenser_id} already has an unresolved {subject.kind.value} alarm:"
            " resolve it before triggering another"
        )
    return opened[0]


@dataclass(frozen=True)
class FlagChange:
    team_id: int
    before: bool
    after: bool


def set_team_training(
    conn: DbConn, team_id: int, wanted: bool, by: str, now: datetime
) -> FlagChange:
    """Make a team a training team, or a real one again: only while it has no patients and no
    alarms (:func:`dosewatch.domain.training.flag_change_refusal`). The caller audits it."""
    with conn.transaction():
        found = team_sql.team_history(conn, team_id)
        if found is None:
            raise NotFound(f"team {team_id} does not exist")
        refusal = training.flag_change_refusal(
            found["training"], wanted, found["patients"], found["alarms"]
        )
        if refusal is not None:
            raise Refused(refusal)
        team_sql.set_training(conn, team_id, wanted, by, now)
    return FlagChange(team_id, found["training"], wanted)


def patient_move_refusal(conn: DbConn, patient_id: int, to_team: int | None) -> str | None:
    """Why the patient may not move to ``to_team`` (``None`` is no team), or ``None``. Call it in
    the transaction that moves the patient: the patient row is locked."""
    side = team_sql.patient_side(conn, patient_id)
    if side is None:
        raise NotFound(f"patient {patient_id} does not exist")
    return training.move_refusal(
        side["training"], team_sql.is_training_team(conn, to_team), side["has_record"]
    )


@dataclass(frozen=True)
class Setup:
    team_id: int
    nurse_ids: list[int]
    dispenser_ids: list[str]


_ROLES = ("primary", "backup", "lead")


def set_up(
    conn: DbConn, name: str, phones: list[str], patients: int, now: datetime, hours: int = 12
) -> Setup:
    """A training team with a nurse per phone on shift from now for ``hours`` (primary, backup,
    lead, then more backups), and ``patients`` training patients with a dispenser each.

    A phone that already belongs to a real nurse or patient is refused: a training alarm would
    never page it (:func:`dosewatch.domain.training.screen_step`), so the practice would fail
    silently."""
    try:
        return _set_up(conn, name, phones, patients, now, hours)
    except psycopg.errors.UniqueViolation:
        raise Refused(f"a team named {name!r} already exists") from None


def _set_up(
    conn: DbConn, name: str, phones: list[str], patients: int, now: datetime, hours: int
) -> Setup:
    with conn.transaction():
        real = team_sql.real_numbers(conn, phones)
        clash = [p for p in phones if training.normalise_number(p) in real]
        if clash:
            raise Refused(
                f"{', '.join(clash)} belong(s) to a real nurse or patient: training never pages"
                " a real number; give the practice phones' numbers"
            )
        team = team_sql.create_team(conn, name, now)
        team_sql.set_training(conn, team["id"], True, "setup", now)
        nurse_ids = []
        for i, phone in enumerate(phones):
            nurse = team_sql.create_nurse(
                conn, team_id=team["id"], name=f"{name} {i + 1}", phone=phone, language="sv",
                now=now,
            )  # fmt: skip
            team_sql.create_shift(
                conn, team_id=team["id"], nurse_id=nurse["id"], starts_at=now,
                ends_at=now + timedelta(hours=hours), role=_ROLES[i] if i < 3 else "backup",
            )  # fmt: skip
            nurse_ids.append(nurse["id"])
        dispenser_ids = []
        for i in range(1, patients + 1):
            patient = registry.create_patient(
                conn, name=f"{name}: patient {i}", phone="", address=f"{name}, lägenhet {i}",
                note="Träningspatient: finns inte på riktigt.",
            )  # fmt: skip
            team_sql.set_patient_team(conn, patient["id"], team["id"])
            dispenser_id = f"TRN-{team['id']}-{i}"
            registry.create_dispenser(conn, dispenser_id=dispenser_id, patient_id=patient["id"])
            dispenser_ids.append(dispenser_id)
    return Setup(team["id"], nurse_ids, dispenser_ids)
