"""SQL for teams, nurses, shifts, escalation policy versions, and a patient's team and contact.

Rules that need more than one row (a nurse's shifts must not overlap; a policy version number is
the previous one plus one) are made safe against concurrent requests by locking the parent row
(the nurse, the team) with ``FOR UPDATE`` first: the second request waits, then sees the first's
row. The policy table's primary key would also refuse a duplicate version, but as an error.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, TypedDict

from psycopg.types.json import Jsonb

from dosewatch.db import DbConn
from dosewatch.domain.roster import Role, Shift
from dosewatch.domain.training import normalise_number

Row = dict[str, Any]
_NURSE_COLUMNS = "id, team_id, name, phone, language, active, created_at"
_SHIFT_COLUMNS = (
    "s.id, s.team_id, s.nurse_id, n.name AS nurse_name, s.role, s.starts_at, s.ends_at,"
    " (extract(epoch FROM s.ends_at - s.starts_at) / 60)::int AS duration_min"
)
_POLICY_COLUMNS = "team_id, version, policy, created_at, created_by"


# --- teams -----------------------------------------------------------------------------------


def create_team(conn: DbConn, name: str, now: datetime) -> Row:
    """Raises ``psycopg.errors.UniqueViolation`` when the name is taken."""
    row = conn.execute(
        "INSERT INTO teams (name, created_at) VALUES (%s, %s) RETURNING id, name, created_at",
        (name, now),
    ).fetchone()
    assert row is not None
    return {**row, "policy_version": None, "training": False}


_TEAM_SELECT = (
    "SELECT t.id, t.name, t.created_at, t.training,"
    " (SELECT max(version) FROM escalation_policies p WHERE p.team_id = t.id) AS policy_version"
    " FROM teams t"
)


def list_teams(conn: DbConn) -> list[Row]:
    return conn.execute(f"{_TEAM_SELECT} ORDER BY t.name").fetchall()


def get_team(conn: DbConn, team_id: int) -> Row | None:
    return conn.execute(f"{_TEAM_SELECT} WHERE t.id = %s", (team_id,)).fetchone()


def lock_team(conn: DbConn, team_id: int) -> bool:
    row = conn.execute("SELECT id FROM teams WHERE id = %s FOR UPDATE", (team_id,)).fetchone()
    return row is not None


# --- training mode (the rules: dosewatch.domain.training) ----------------------------------

# domain.training.normalise_number in SQL (a test holds the two together).
NORMALISED = "regexp_replace({}, '[^0-9+]', '', 'g')"


def training_teams(conn: DbConn, team_ids: Collection[int | None]) -> set[int]:
    """Which of these teams are training teams (one query per batch, not per alarm)."""
    wanted = sorted({t for t in team_ids if t is not None})
    if not wanted:
        return set()
    rows = conn.execute(
        "SELECT id FROM teams WHERE id = ANY(%s) AND training", (wanted,)
    ).fetchall()
    return {r["id"] for r in rows}


def real_numbers(conn: DbConn, numbers: Collection[str]) -> set[str]:
    """Which of these numbers (normalised) belong to a real person: a nurse of a non-training
    team, or a patient (phone or contact) of a non-training team or of no team."""
    wanted = sorted({normalise_number(n) for n in numbers})
    if not wanted:
        return set()
    rows = conn.execute(
        f"SELECT {NORMALISED.format('n.phone')} AS number FROM nurses n JOIN teams t"
        f" ON t.id = n.team_id WHERE NOT t.training AND {NORMALISED.format('n.phone')} = ANY(%(w)s)"
        f" UNION SELECT {NORMALISED.format('x.number')} FROM patients p"
        " CROSS JOIN LATERAL (VALUES (p.phone), (p.contact_phone)) AS x(number)"
        " WHERE x.number IS NOT NULL AND NOT EXISTS"
        "   (SELECT 1 FROM teams t WHERE t.id = p.team_id AND t.training)"
        f" AND {NORMALISED.format('x.number')} = ANY(%(w)s)",
        {"w": wanted},
    ).fetchall()
    return {r["number"] for r in rows}


class TeamHistory(TypedDict):
    training: bool
    patients: int
    alarms: int


def team_history(conn: DbConn, team_id: int) -> TeamHistory | None:
    """The team's flag and what already belongs to it, the team row locked (the flag may change
    only while nothing does)."""
    return conn.execute(
        "SELECT t.training, (SELECT count(*) FROM patients WHERE team_id = t.id)::int AS patients,"
        " (SELECT count(*) FROM alarms WHERE team_id = t.id)::int AS alarms"
        " FROM teams t WHERE t.id = %s FOR UPDATE",
        (team_id,),
    ).fetchone()


def set_training(conn: DbConn, team_id: int, training: bool, by: str, now: datetime) -> None:
    conn.execute(
        "UPDATE teams SET training = %s, training_changed_at = %s, training_changed_by = %s"
        " WHERE id = %s AND training IS DISTINCT FROM %s",
        (training, now, by, team_id, training),
    )


class PatientSide(TypedDict):
    training: bool
    has_record: bool


def patient_side(conn: DbConn, patient_id: int) -> PatientSide | None:
    """Whether the patient is a training one (by its team) and has a record: an alarm, or a dose
    slot already decided. The patient row is locked against a concurrent move."""
    return conn.execute(
        "SELECT COALESCE(t.training, false) AS training,"
        " (EXISTS (SELECT 1 FROM alarms a WHERE a.patient_id = p.id) OR EXISTS (SELECT 1"
        "   FROM dose_slots s JOIN dispensers d ON d.id = s.dispenser_id"
        "   WHERE d.patient_id = p.id AND s.state <> 'pending')) AS has_record"
        " FROM patients p LEFT JOIN teams t ON t.id = p.team_id WHERE p.id = %s FOR UPDATE OF p",
        (patient_id,),
    ).fetchone()


class DispenserTeam(TypedDict):
    patient_id: int
    team_id: int | None
    training: bool | None  # None: the patient has no team


def dispenser_team(conn: DbConn, dispenser_id: str) -> DispenserTeam | None:
    return conn.execute(
        "SELECT d.patient_id, p.team_id, t.training FROM dispensers d"
        " JOIN patients p ON p.id = d.patient_id LEFT JOIN teams t ON t.id = p.team_id"
        " WHERE d.id = %s",
        (dispenser_id,),
    ).fetchone()


def is_training_team(conn: DbConn, team_id: int | None) -> bool:
    return bool(team_id is not None and training_teams(conn, [team_id]))


# --- nurses ----------------------------------------------------------------------------------


def create_nurse(
    conn: DbConn, *, team_id: int, name: str, phone: str, language: str, now: datetime
) -> Row:
    row: Row | None = conn.execute(
        "INSERT INTO nurses (team_id, name, phone, language, created_at)"
        f" VALUES (%s, %s, %s, %s, %s) RETURNING {_NURSE_COLUMNS}",
        (team_id, name, phone, language, now),
    ).fetchone()
    assert row is not None
    return row


def list_nurses(conn: DbConn, team_id: int | None = None) -> list[Row]:
    return conn.execute(
        f"SELECT {_NURSE_COLUMNS} FROM nurses WHERE %(t)s::bigint IS NULL OR team_id = %(t)s"
        " ORDER BY team_id, name, id",
        {"t": team_id},
    ).fetchall()


def get_nurse(conn: DbConn, nurse_id: int, *, lock: bool = False) -> Row | None:
    # FOR UPDATE serialises shift inserts for one nurse (see the overlap check).
    suffix = " FOR UPDATE" if lock else ""
    return conn.execute(
        f"SELECT {_NURSE_COLUMNS} FROM nurses WHERE id = %s{suffix}", (nurse_id,)
    ).fetchone()


def update_nurse(
    conn: DbConn,
    nurse_id: int,
    *,
    active: bool | None = None,
    phone: str | None = None,
    language: str | None = None,
) -> Row | None:
    """Change the given fields; ``None`` leaves a field as it is."""
    return conn.execute(
        "UPDATE nurses SET active = COALESCE(%s, active), phone = COALESCE(%s, phone),"
        f" language = COALESCE(%s, language) WHERE id = %s RETURNING {_NURSE_COLUMNS}",
        (active, phone, language, nurse_id),
    ).fetchone()


def reachable_nurse_ids(conn: DbConn, team_id: int) -> set[int]:
    """Nurses of the team who can be paged: active, with a phone number."""
    rows = conn.execute(
        "SELECT id FROM nurses WHERE team_id = %s AND active AND phone <> ''", (team_id,)
    ).fetchall()
    return {r["id"] for r in rows}


# --- shifts ----------------------------------------------------------------------------------


def overlapping_shift(
    conn: DbConn, nurse_id: int, starts_at: datetime, ends_at: datetime
) -> Row | None:
    """A shift of this nurse that overlaps ``[starts_at, ends_at)``; touching ends do not."""
    return conn.execute(
        f"SELECT {_SHIFT_COLUMNS} FROM shifts s JOIN nurses n ON n.id = s.nurse_id"
        " WHERE s.nurse_id = %s AND s.starts_at < %s AND %s < s.ends_at"
        " ORDER BY s.starts_at LIMIT 1",
        (nurse_id, ends_at, starts_at),
    ).fetchone()


def create_shift(
    conn: DbConn, *, team_id: int, nurse_id: int, starts_at: datetime, ends_at: datetime, role: str
) -> Row:
    row = conn.execute(
        "INSERT INTO shifts (team_id, nurse_id, starts_at, ends_at, role)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (team_id, nurse_id, starts_at, ends_at, role),
    ).fetchone()
    assert row is not None
    got = get_shift(conn, row["id"])
    assert got is not None
    return got


def get_shift(conn: DbConn, shift_id: int) -> Row | None:
    return conn.execute(
        f"SELECT {_SHIFT_COLUMNS} FROM shifts s JOIN nurses n ON n.id = s.nurse_id WHERE s.id = %s",
        (shift_id,),
    ).fetchone()


def list_shifts(conn: DbConn, team_id: int, start: datetime, end: datetime) -> list[Row]:
    """Shifts overlapping ``[start, end)``, including one already running at ``start``."""
    return conn.execute(
        f"SELECT {_SHIFT_COLUMNS} FROM shifts s JOIN nurses n ON n.id = s.nurse_id"
        " WHERE s.team_id = %s AND s.starts_at < %s AND %s < s.ends_at"
        " ORDER BY s.starts_at, s.role, s.id",
        (team_id, end, start),
    ).fetchall()


def roster(conn: DbConn, team_id: int, start: datetime, end: datetime) -> list[Shift]:
    """The same shifts as :func:`list_shifts`, as domain values for the roster rules."""
    return [
        Shift(r["nurse_id"], Role(r["role"]), r["starts_at"], r["ends_at"])
        for r in list_shifts(conn, team_id, start, end)
    ]


def delete_shift(conn: DbConn, shift_id: int) -> Row | None:
    row = get_shift(conn, shift_id)
    if row is not None:
        conn.execute("DELETE FROM shifts WHERE id = %s", (shift_id,))
    return row


# --- escalation policies ---------------------------------------------------------------------


def save_policy(
    conn: DbConn, team_id: int, policy: dict[str, Any], *, created_by: str, now: datetime
) -> Row:
    """Store the next version; the caller has locked the team (:func:`lock_team`)."""
    row: Row | None = conn.execute(
        f"INSERT INTO escalation_policies ({_POLICY_COLUMNS})"
        " SELECT %(t)s, COALESCE(MAX(version), 0) + 1, %(p)s, %(now)s, %(by)s"
        f" FROM escalation_policies WHERE team_id = %(t)s RETURNING {_POLICY_COLUMNS}",
        {"t": team_id, "p": Jsonb(policy), "now": now, "by": created_by},
    ).fetchone()
    assert row is not None
    return row


def current_policy(conn: DbConn, team_id: int) -> Row | None:
    """The newest version: the one a new alarm copies (see the trigger in 0004)."""
    return conn.execute(
        f"SELECT {_POLICY_COLUMNS} FROM escalation_policies WHERE team_id = %s"
        " ORDER BY version DESC LIMIT 1",
        (team_id,),
    ).fetchone()


def policy_history(conn: DbConn, team_id: int) -> list[Row]:
    return conn.execute(
        f"SELECT {_POLICY_COLUMNS} FROM escalation_policies WHERE team_id = %s ORDER BY version",
        (team_id,),
    ).fetchall()


# --- a patient's team and contact ------------------------------------------------------------


def set_patient_team(conn: DbConn, patient_id: int, team_id: int | None) -> bool:
    """Alarms opened from now on go to this team; open ones keep the team they were given."""
    row = conn.execute(
        "UPDATE patients SET team_id = %s WHERE id = %s RETURNING id", (team_id, patient_id)
    ).fetchone()
    return row is not None


_CONTACT_COLUMNS = "id AS patient_id, contact_phone, contact_sms_consent_at"


def get_patient_contact(conn: DbConn, patient_id: int) -> Row | None:
    return conn.execute(
        f"SELECT {_CONTACT_COLUMNS} FROM patients WHERE id = %s", (patient_id,)
    ).fetchone()


def set_patient_contact(
    conn: DbConn, patient_id: int, *, phone: str | None, consent: bool, now: datetime
) -> Row | None:
    """Store the number and whether SMS reminders to it are consented to.

    Consent belongs to a number: repeating the same number with consent keeps the time consent
    was first recorded, while a new number starts a new consent at ``now``. No consent: NULL.
    (In an UPDATE every right-hand side reads the row's old values, so the CASE compares the
    old number with the new one.)
    """
    return conn.execute(
        "UPDATE patients SET contact_phone = %(phone)s, contact_sms_consent_at = CASE"
        " WHEN NOT %(consent)s THEN NULL"
        " WHEN contact_sms_consent_at IS NOT NULL AND contact_phone IS NOT DISTINCT FROM %(phone)s"
        " THEN contact_sms_consent_at ELSE %(now)s END"
        f" WHERE id = %(id)s RETURNING {_CONTACT_COLUMNS}",
        {"phone": phone, "consent": consent, "now": now, "id": patient_id},
    ).fetchone()
