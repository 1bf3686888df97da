"""SQL for patients and dispensers."""

from __future__ import annotations

from typing import Any

from dosewatch.db import DbConn

Row = dict[str, Any]


def create_patient(
    conn: DbConn, *, name: str, phone: str, address: str | None, note: str | None
) -> Row:
    row: Row | None = conn.execute(
        "INSERT INTO patients (name, phone, address, note) VALUES (%s, %s, %s, %s)"
        " RETURNING id, name, phone, address, note, created_at",
        (name, phone, address, note),
    ).fetchone()
    assert row is not None
    return row


def get_patient(conn: DbConn, patient_id: int) -> Row | None:
    return conn.execute(
        "SELECT id, name, phone, address, note, created_at, team_id FROM patients WHERE id = %s",
        (patient_id,),
    ).fetchone()


def create_dispenser(conn: DbConn, *, dispenser_id: str, patient_id: int) -> Row:
    row: Row | None = conn.execute(
        "INSERT INTO dispensers (id, patient_id) VALUES (%s, %s)"
        " RETURNING id, patient_id, created_at",
        (dispenser_id, patient_id),
    ).fetchone()
    assert row is not None
    return row


def get_dispenser(conn: DbConn, dispenser_id: str) -> Row | None:
    return conn.execute(
        "SELECT d.id, d.patient_id, d.created_at, s.version AS schedule_version"
        " FROM dispensers d LEFT JOIN LATERAL ("
        "   SELECT version FROM schedules WHERE dispenser_id = d.id"
        "   ORDER BY version DESC LIMIT 1) s ON true"
        " WHERE d.id = %s",
        (dispenser_id,),
    ).fetchone()


def known_dispensers(conn: DbConn, ids: list[str]) -> set[str]:
    rows = conn.execute("SELECT id FROM dispensers WHERE id = ANY(%s)", (ids,)).fetchall()
    return {r["id"] for r in rows}
